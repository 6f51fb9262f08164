/**
 * `mcp-warden explain`: "is that allowed?" answered without calling anything. Builds the caller a
 * token would describe (the user's roles from the built-in user store, or --role), runs the
 * server's policy on one request and prints the decision, the rule that made it and why each
 * rule naming the request did or did not apply.
 */
import { existsSync } from 'node:fs';
import type { Caller } from '../../kernel/caller.ts';
import type { ServerConfig } from '../../config/schema.ts';
import { advertisedScopes } from '../../policy/scopes.ts';
import { compilePolicy, type Explanation, type RuleTrace } from '../../policy/engine.ts';
import type { Decision } from '../../policy/types.ts';
import { openStorage } from '../../storage/index.ts';
import { UserStore } from '../../users/user-store.ts';
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { configFromOptions } from '../config-options.ts';

const HELP = `usage: mcp-warden explain [--config FILE | --demo] [--server NAME] --user U
                          (--tool NAME [--args JSON] | --resource URI | --prompt NAME [--args JSON] | --method M)
                          [--client ID] [--scope "a b"] [--role R]... [--claim NAME=VALUE]...

  --user U        the user; roles come from the built-in user store unless --role is given
  --role R        the user's roles (repeat for several), for users of an external identity provider
  --claim N=V     a token claim (V is JSON when it parses, else a string), for claim conditions
  --client ID     the OAuth client_id (default: none, so client conditions do not hold)
  --scope "a b"   granted scopes (default: every scope the server advertises)
  --args JSON     tool or prompt arguments, e.g. '{"path":"/public/a"}'

Exit status: 0 when allowed, 3 when denied.
`;

const FAILURES: Record<NonNullable<RuleTrace['failed']>, string> = {
  roles: 'the user has none of its roles',
  claims: 'one of its claim conditions does not hold',
  clients: 'the client is not one it names',
  clientHosts: 'the client ID is not an https URL on a host it names',
  arguments: 'one of its argument conditions does not hold',
};

function request(values: { tool?: string | undefined; resource?: string | undefined; prompt?: string | undefined; method?: string | undefined; args?: string | undefined }) {
  const given = (['tool', 'resource', 'prompt', 'method'] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) throw new UsageError('say what to explain with exactly one of --tool, --resource, --prompt or --method');
  let args: unknown;
  if (values.args !== undefined) {
    if (values.tool === undefined && values.prompt === undefined) throw new UsageError('--args goes with --tool or --prompt');
    try {
      args = JSON.parse(values.args);
    } catch {
      throw new UsageError('--args is not valid JSON; give an object such as \'{"path":"/public/a"}\'');
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new UsageError('--args must be a JSON object');
  }
  if (values.tool !== undefined) return { method: 'tools/call', params: { name: values.tool, ...(args ? { arguments: args } : {}) }, what: `tool ${values.tool}` };
  if (values.prompt !== undefined) return { method: 'prompts/get', params: { name: values.prompt, ...(args ? { arguments: args } : {}) }, what: `prompt ${values.prompt}` };
  if (values.resource !== undefined) return { method: 'resources/read', params: { uri: values.resource }, what: `resource ${values.resource}` };
  return { method: values.method!, params: {}, what: `method ${values.method}` };
}

function parseClaims(pairs: readonly string[]): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--claim "${pair}" is not NAME=VALUE`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    claims[pair.slice(0, eq)] = value;
  }
  return claims;
}

function pickServer(servers: readonly ServerConfig[], name: string | undefined): ServerConfig {
  if (name === undefined) {
    if (servers.length === 1) return servers[0]!;
    throw new UsageError(`say which server with --server; servers are: ${servers.map((s) => s.name).join(', ')}`);
  }
  const server = servers.find((s) => s.name === name);
  if (!server) throw new UsageError(`no server "${name}" in the configuration; servers are: ${servers.map((s) => s.name).join(', ')}`);
  return server;
}

function describeRule(trace: RuleTrace, decisive: boolean): string {
  let why: string;
  if (trace.applies) why = decisive ? 'applies, and decided' : 'applies, but another rule decided';
  else if (trace.failed) why = `does not apply: ${FAILURES[trace.failed]}`;
  else why = `does not apply: the token lacks scope${trace.missingScopes.length > 1 ? 's' : ''} ${trace.missingScopes.join(' ')}`;
  return `  ${trace.name}  (${trace.effect})  ${why}`;
}

function print(out: NodeJS.WritableStream, lines: string[]): void {
  out.write(`${lines.join('\n')}\n`);
}

export const run: Command = async ({ args, env, stdout, checkOnly }) => {
  const { values } = parseOptions(args, {
    config: { type: 'string' },
    demo: { type: 'boolean' },
    server: { type: 'string' },
    user: { type: 'string' },
    role: { type: 'string', multiple: true },
    claim: { type: 'string', multiple: true },
    client: { type: 'string' },
    scope: { type: 'string' },
    tool: { type: 'string' },
    resource: { type: 'string' },
    prompt: { type: 'string' },
    method: { type: 'string' },
    args: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) {
    stdout.write(HELP);
    return 0;
  }
  if (!values.user) throw new UsageError('say who is asking with --user (e.g. --user bob)');
  const req = request(values);
  if (checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const config = configFromOptions(values, env);
  const server = pickServer(config.servers, values.server);

  let roles: string[];
  let rolesFrom: string;
  if (values.role?.length) {
    roles = values.role;
    rolesFrom = 'as given';
  } else {
    const as = config.authorizationServer;
    if (!('embedded' in as)) {
      throw new UsageError('users of an external identity provider are not stored here: give their roles with --role');
    }
    const path = config.storage.sqlite.path;
    // An admin command never creates an empty SQLite file just to find nobody in it.
    const user = !config.storage.postgres && (path === ':memory:' || !existsSync(path)) ? undefined : await (async () => {
      const storage = await openStorage(config);
      try {
        return await new UserStore(storage.users, as.embedded.roles).get(values.user!);
      } finally {
        await storage.close();
      }
    })();
    if (!user) {
      const where = config.storage.postgres ? 'PostgreSQL' : path;
      throw new Error(`user "${values.user}" is unknown: not in the built-in user store at ${where}. Add the user with \`mcp-warden users add\`, or give their roles with --role.`);
    }
    roles = user.roles;
    rolesFrom = 'from the user store';
  }

  const allScopes = advertisedScopes(server);
  const scopes = values.scope !== undefined ? values.scope.split(' ').filter(Boolean) : allScopes;
  const clientId = values.client ?? '';
  const caller: Caller = {
    subject: values.user,
    clientId,
    issuer: 'mcp-warden explain',
    audience: `${config.publicUrl}${server.path}`,
    scopes,
    roles,
    claims: { sub: values.user, client_id: clientId, scope: scopes.join(' '), roles, ...parseClaims(values.claim ?? []) },
    expiresAt: 0,
    accessToken: '',
  };

  const head = [
    `server:   ${server.name} (${server.path}), ${req.method} ${req.what.replace(/^\w+ /, '')}`,
    `user:     ${values.user}, roles: ${roles.length ? roles.join(' ') : '(none)'} (${rolesFrom})`,
    `client:   ${clientId || '(none given: client conditions do not hold)'}`,
    `scopes:   ${scopes.length ? scopes.join(' ') : '(none)'}${values.scope === undefined ? ' (every scope the server advertises; --scope to choose)' : ''}`,
    '',
  ];

  // The gateway refuses a token without the server's requiredScopes before policy is asked.
  const missingRequired = server.requiredScopes.filter((s) => !scopes.includes(s));
  let explanation: Explanation | undefined;
  let decision: Decision;
  let decidedBy: string;
  if (missingRequired.length) {
    decision = { effect: 'deny', rule: null, reason: `every request to this server needs scope ${missingRequired.join(' ')}`, stepUpScopes: [...scopes, ...missingRequired] };
    decidedBy = '(none: the server\'s requiredScopes, checked before the policy)';
  } else if (!server.policy) {
    decision = { effect: 'allow', rule: null, reason: 'the server has no policy: every authenticated request is allowed' };
    decidedBy = '(none: the server has no policy)';
  } else {
    explanation = compilePolicy(server.policy).explain(caller, { server: server.name, method: req.method, params: req.params });
    decision = explanation.decision;
    decidedBy = decision.rule ?? (explanation.request.malformed
      ? '(none: the request cannot be checked)'
      : explanation.rules.some((r) => r.names) || explanation.request.kind !== 'method'
        ? `(none: the policy default, ${server.policy.default})`
        : '(none: no rule names this method, so the policy does not restrict it)');
  }

  const lines = [
    ...head,
    `decision: ${decision.effect.toUpperCase()}`,
    `rule:     ${decidedBy}`,
    `reason:   ${decision.reason}`,
  ];
  if (decision.effect === 'deny' && decision.stepUpScopes) {
    lines.push(`step-up:  403 insufficient_scope; a token with scope "${decision.stepUpScopes.join(' ')}" would be allowed`);
  }
  if (explanation) {
    const naming = explanation.rules.filter((r) => r.names);
    lines.push('', naming.length ? `rules naming this ${explanation.request.kind}, in order (mode ${server.policy!.mode}):` : `no rule names this ${explanation.request.kind}`);
    for (const trace of naming) lines.push(describeRule(trace, trace.name === decision.rule));
  }
  print(stdout, lines);
  return decision.effect === 'allow' ? 0 : 3;
};
