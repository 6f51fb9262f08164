/**
 * The one thing the token store asks of an OS keychain: get, set and delete a secret by account
 * name, under the service name `mcp-warden`. Backends: the freedesktop Secret Service through
 * `secret-tool` (secret-service.ts) and macOS `security` (macos.ts). Windows falls back to the file.
 * @see OAuth 2.1 §7.1 (store tokens securely); MCP 2025-11-25 §Token Storage (clients MUST store tokens securely)
 */
import { ClientError } from '../errors.ts';

export const KEYCHAIN_SERVICE = 'mcp-warden';

export interface Keychain {
  /** Backend name for notices and errors (`secret-service`, `macos-keychain`). */
  readonly name: string;
  /** The secret stored for `account`, or undefined when there is none. */
  get(account: string): Promise<string | undefined>;
  /** Stores (or replaces) the secret for `account`. */
  set(account: string, secret: string, label: string): Promise<void>;
  /** Deletes the item; false when there was none. */
  delete(account: string): Promise<boolean>;
}

/** `auto`: the keychain when it works, else the 0600 file; `keychain`: the keychain or an error; `file`: the 0600 file. */
export type TokenStoreMode = 'auto' | 'keychain' | 'file';

const MODES: readonly TokenStoreMode[] = ['auto', 'keychain', 'file'];

/** Parses `--token-store` / `MCP_WARDEN_TOKEN_STORE`; undefined stays undefined (the default applies). */
export function parseTokenStoreMode(value: string | undefined, source = '--token-store'): TokenStoreMode | undefined {
  if (value === undefined || value === '') return undefined;
  if ((MODES as readonly string[]).includes(value)) return value as TokenStoreMode;
  throw new ClientError('usage', `${source} must be one of ${MODES.join(', ')}, not "${value}"`);
}
