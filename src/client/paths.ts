/**
 * Where the client keeps its state: `$MCP_WARDEN_HOME`, else `$XDG_CONFIG_HOME/mcp-warden`, else
 * `~/.config/mcp-warden`. The folder is created 0700 (OAuth 2.1 §7.1: tokens stored securely).
 */
import { mkdirSync, chmodSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function resolveClientHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MCP_WARDEN_HOME) return env.MCP_WARDEN_HOME;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'mcp-warden');
}

/** Creates `dir` (and parents) and forces mode 0700 on it, as a group/world-readable folder would expose tokens. */
export function ensurePrivateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}
