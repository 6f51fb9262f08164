// Types for legacy-sqlite-driver.mjs (plain JavaScript: scripts/test.mjs runs before any TypeScript loader).
export function fallsBackToLegacyDriver(): boolean;
export function legacySqliteDriverDir(): string;
/** Undefined when there is nothing to build or the build succeeded; else why it could not be built. */
export function ensureLegacySqliteDriver(options?: { env?: NodeJS.ProcessEnv; log?: (line: string) => void }): string | undefined;
