// Types for prerequisites.mjs (plain JavaScript: scripts/test.mjs runs before any TypeScript loader).
export interface Prerequisite {
  /** The Debian package. */
  apt: string;
  /** Programs it provides that the tests run: an absolute path, or a name looked up on PATH. */
  programs: string[];
  /** Which tests need it. */
  for: string;
}
export const PREREQUISITES: Prerequisite[];
export function missingPrerequisites(env?: NodeJS.ProcessEnv): Prerequisite[];
export function installCommand(missing: Prerequisite[], isRoot: boolean): string;
export function ensurePrerequisites(options?: { env?: NodeJS.ProcessEnv; isRoot?: boolean; log?: (line: string) => void }): boolean;
