// Types for legacy-sqlite-driver.mjs (plain JavaScript: scripts/test.mjs runs before any TypeScript loader).
export function fallsBackToLegacyDriver(): boolean;
export function legacySqliteDriverDir(): string;
export function ensureLegacySqliteDriver(options?: { env?: NodeJS.ProcessEnv; log?: (line: string) => void }): boolean;
