/**
 * Start-up checks that do not stop the server but would leave it useless, each a log line naming
 * the key and the fix: an upstream stdio command that cannot be found (every session of that
 * server would fail when a client connects), and an embedded authorization server with no users
 * and no demo (nobody can sign in).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Config } from './schema.ts';

export interface ConfigWarning {
  /** The key path the warning is about. */
  key: string;
  message: string;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where `command` would be run from, as spawn resolves it: a path (absolute, or relative to the
 * server's cwd) as is, a bare name through PATH. Undefined when there is no such executable.
 */
export function findCommand(command: string, env: NodeJS.ProcessEnv, cwd: string = process.cwd()): string | undefined {
  if (command.includes('/') || command.includes('\\')) {
    const file = isAbsolute(command) ? command : resolve(cwd, command);
    return isExecutableFile(file) ? file : undefined;
  }
  const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const file = join(dir, command + ext);
      if (isExecutableFile(file)) return file;
    }
  }
  return undefined;
}

/** The warnings for `config`, in key order. `userCount` is the embedded AS's number of users. */
export function configWarnings(config: Config, options: { env: NodeJS.ProcessEnv; userCount?: number }): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  config.servers.forEach((server, i) => {
    if (!('stdio' in server.upstream)) return;
    const { command, cwd } = server.upstream.stdio;
    if (findCommand(command, options.env, cwd) === undefined) {
      const where = command.includes('/') ? `at ${command}` : 'on PATH';
      warnings.push({
        key: `servers.${i}.upstream.stdio.command`,
        message: `servers.${i}.upstream.stdio.command "${command}" is not an executable ${where}: sessions of server "${server.name}" will fail when a client connects. Install it, or give its full path.`,
      });
    }
  });
  const as = config.authorizationServer;
  if ('embedded' in as && !as.embedded.demo && options.userCount === 0) {
    warnings.push({
      key: 'authorizationServer.embedded',
      message: 'the embedded authorization server has no users and demo is off: nobody can sign in. Add one with: mcp-warden users add NAME --role admin --config FILE',
    });
  }
  return warnings;
}
