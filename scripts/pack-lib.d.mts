// Types for pack-lib.mjs (plain JavaScript, run by pack-smoke.mjs without a TypeScript loader).
export function run(command: string, args: string[], options?: { cwd?: string; env?: NodeJS.ProcessEnv }): string;
export function pack(cwd: string, destination: string, extraArgs?: string[]): string;
export function install(folder: string, tarball: string, options?: { nativeFrom?: string }): void;
export function footprint(folder: string): { bytes: number; packages: string[]; native: string[] };
