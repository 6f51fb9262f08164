/**
 * The one start-up configuration error. Every message names the key path, shows what was given
 * and says the fix; the code says which kind of problem it is, for programs that embed
 * mcp-warden and for docs/errors.md.
 */

export type ConfigErrorCode =
  /** The file given to --config cannot be read. */
  | 'unreadable_file'
  /** The file is not valid YAML or JSON. */
  | 'syntax'
  /** A `${NAME}` reference to an environment variable that is not set and has no default. */
  | 'unset_variable'
  /** A key has the wrong type or value, is missing, or is unknown. */
  | 'invalid_value'
  /** Settings that are each valid but cannot work together (two servers on one path, …). */
  | 'conflicting_settings'
  /**
   * A feature whose prerequisites are missing: one switched on explicitly (account area,
   * downstream credentials), or the embedded SQLite store's driver, which does not load.
   */
  | 'unavailable_feature';

export class ConfigError extends Error {
  override name = 'ConfigError';

  /** `message` first so call sites read as prose; `code` defaults to an invalid value. */
  constructor(message: string, readonly code: ConfigErrorCode = 'invalid_value') {
    super(message);
  }
}
