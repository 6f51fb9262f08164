/**
 * Reading a claim by name or dotted path (`realm_access.roles`), shared by the token verifier
 * (the roles claim) and policy rules (claim conditions). Only own properties are read: a path
 * such as `constructor.name` or `__proto__.x` must never reach Object.prototype.
 */

/**
 * The claim with this exact name (claims such as Auth0's `https://example.com/roles` hold dots),
 * else the value at the dotted path; undefined when any step is missing.
 */
export function readClaim(source: Readonly<Record<string, unknown>>, name: string, path: readonly string[] = name.split('.')): unknown {
  if (Object.hasOwn(source, name)) return source[name];
  let value: unknown = source;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
