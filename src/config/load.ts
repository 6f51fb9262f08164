/**
 * Reads a configuration file (YAML or JSON), substitutes `${ENV}` references and validates it.
 * An invalid file stops start-up with a `ConfigError` naming the key, the problem and the fix.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config } from './schema.ts';
import { ConfigError } from './errors.ts';
import { describeIssue, keyOf } from './describe-issue.ts';

export { ConfigError, type ConfigErrorCode } from './errors.ts';

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string of a parsed document.
 * A reference to an unset variable without a default is an error naming where it was used.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined) return v;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${keyOf(path)}: environment variable ${name} is not set. Set it, or write \${${name}:-default} to give a default.`, 'unset_variable');
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, String(i)]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...path, k])]));
  }
  return value;
}

/** Validates an already-parsed document (after env substitution) into a Config. */
export function parseConfig(document: unknown): Config {
  const result = configSchema.safeParse(document);
  if (!result.success) {
    const lines = result.error.issues.flatMap((i) => describeIssue(i, document, [], configSchema)).map((l) => `  - ${l}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = result.data;
  const seenPaths = new Map<string, string>();
  const seenNames = new Set<string>();
  const as = config.authorizationServer;
  const audiences = new Map<string, string>();
  config.servers.forEach((s, i) => {
    // Per-server audiences keep a token for one server from working at another (RFC 8707 §2).
    for (const aud of s.audience === undefined ? [] : [s.audience].flat()) {
      if (!('external' in as)) throw new ConfigError(`servers.${i}.audience is for external authorization servers; the embedded one always sets aud to the server's canonical URI. Remove it.`, 'conflicting_settings');
      if (aud === as.external.audience) throw new ConfigError(`servers.${i}.audience "${aud}" is also authorizationServer.external.audience, which every server accepts. Give the server its own audience.`, 'conflicting_settings');
      const owner = audiences.get(aud);
      if (owner !== undefined && owner !== s.name) throw new ConfigError(`servers.${i}.audience "${aud}" is already the audience of server "${owner}": a token for one would work at both. Give each server its own audience.`, 'conflicting_settings');
      audiences.set(aud, s.name);
    }
    if (seenNames.has(s.name)) throw new ConfigError(`servers.${i}.name "${s.name}" is used twice. Give each server its own name.`, 'conflicting_settings');
    seenNames.add(s.name);
    const other = seenPaths.get(s.path);
    if (other) throw new ConfigError(`servers.${i}.path "${s.path}" is already used by server "${other}". Give each server its own path.`, 'conflicting_settings');
    seenPaths.set(s.path, s.name);
    for (const [j, scope] of s.requiredScopes.entries()) {
      if (!s.scopes.includes(scope)) {
        throw new ConfigError(`servers.${i}.requiredScopes.${j} "${scope}" is not in servers.${i}.scopes. Add it to scopes so clients can request it.`, 'conflicting_settings');
      }
    }
  });
  // RFC 8707 §2 / RFC 9068 §4: a server without an audience of its own (and no
  // external.audience) accepts its canonical URI as aud, so another server's audience must not be
  // that URI, or a token for one works at both. The URI is formed as canonicalResourceUri does.
  if ('external' in as && as.external.audience === undefined) {
    const byUri = new Map(config.servers.filter((s) => s.audience === undefined)
      .map((s) => [s.path === '/' ? config.publicUrl : `${config.publicUrl}${s.path}`, s.name]));
    config.servers.forEach((s, i) => {
      for (const aud of s.audience === undefined ? [] : [s.audience].flat()) {
        const owner = byUri.get(aud);
        if (owner !== undefined) {
          throw new ConfigError(`servers.${i}.audience "${aud}" is the canonical URI of server "${owner}", which accepts it as aud because "${owner}" has no audience of its own: a token for "${s.name}" would also work at "${owner}". Give "${s.name}" another audience, or give "${owner}" its own servers[].audience.`, 'conflicting_settings');
        }
      }
    });
  }
  return config;
}

/** Loads and validates a configuration file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}. Check the path given to --config.`, 'unreadable_file');
  }
  let document: unknown;
  try {
    document = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`configuration file ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`, 'syntax');
  }
  return parseConfig(substituteEnv(document, env));
}
