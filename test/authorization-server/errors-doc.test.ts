import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The string literals of `export type <name> = | 'a' | 'b' …;` in a source file. */
function unionCodes(path: string, name: string): string[] {
  const source = read(path);
  const start = source.indexOf(`export type ${name} =`);
  assert.ok(start >= 0, `${name} in ${path}`);
  const body = source.slice(start, source.indexOf(';', start));
  const codes = [...body.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!);
  assert.ok(codes.length > 0, `${name} has codes`);
  return codes;
}

describe('docs/errors.md lists every error code of every side', () => {
  const doc = read('docs/errors.md');
  const unions: Array<[string, string]> = [
    ['src/authorization-server/errors.ts', 'AuthorizationServerErrorCode'],
    ['src/gateway/errors.ts', 'GatewayErrorCode'],
    ['src/downstream/errors.ts', 'DownstreamErrorCode'],
    ['src/client/errors.ts', 'ClientErrorCode'],
    ['src/config/errors.ts', 'ConfigErrorCode'],
  ];
  for (const [path, name] of unions) {
    it(`every ${name} has a line in docs/errors.md`, () => {
      // Only this side's section: from its heading to the next one.
      const from = doc.indexOf(`\`${name}\``);
      const to = doc.indexOf('\n## ', from);
      const section = doc.slice(from, to === -1 ? undefined : to);
      const missing = unionCodes(path, name).filter((code) => !section.includes(`\`${code}\``));
      assert.deepEqual(missing, [], `add these codes to docs/errors.md under ${name}`);
    });
  }
});
