/**
 * Globs for tool names, prompt names, methods, resource URIs and client hosts, compiled once.
 *
 * `*` matches any run of characters except `/`; `**` matches any run including `/`. Every other
 * character is literal (`?` too: it is common in URIs). Matching is anchored and case-sensitive.
 * Patterns without a wildcard go into a Set, the rest into one RegExp, so a decision costs one
 * hash lookup plus at most one RegExp test per rule and kind.
 */

export interface Matcher {
  test(value: string): boolean;
  /** The patterns as configured, for explanations. */
  readonly patterns: readonly string[];
}

/** Longest value a matcher will look at; longer names and URIs never match (bounded RegExp work). */
export const MAX_MATCHED_LENGTH = 4096;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The RegExp source (without anchors) of one glob. */
export function globSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; ) {
    if (glob[i] === '*') {
      let n = 0;
      while (glob[i] === '*') {
        n++;
        i++;
      }
      out += n >= 2 ? '.*' : '[^/]*';
    } else {
      const next = glob.indexOf('*', i);
      const end = next === -1 ? glob.length : next;
      out += escapeRegExp(glob.slice(i, end));
      i = end;
    }
  }
  return out;
}

/** Whether a pattern holds a wildcard (`*` or `**`). */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*');
}

/** Compiles a list of globs into one matcher: literals into a Set, the rest into one anchored RegExp. */
export function compileGlobs(patterns: readonly string[], options: { caseInsensitive?: boolean } = {}): Matcher {
  const fold = options.caseInsensitive ? (s: string) => s.toLowerCase() : (s: string) => s;
  const literals = new Set(patterns.filter((p) => !isGlob(p)).map(fold));
  const globs = patterns.filter(isGlob);
  const regexp = globs.length ? new RegExp(`^(?:${globs.map((g) => globSource(fold(g))).join('|')})$`, 's') : undefined;
  return {
    patterns,
    test(value: string): boolean {
      if (value.length > MAX_MATCHED_LENGTH) return false;
      const v = fold(value);
      return literals.has(v) || (regexp !== undefined && regexp.test(v));
    },
  };
}
