/** Callers for policy tests: the verified token facts the gateway would build. */
import type { Principal } from '../../src/kernel/caller.ts';

export function caller(overrides: Partial<Principal> = {}): Principal {
  return {
    subject: 'alice',
    clientId: 'client-1',
    issuer: 'https://as.example.com',
    audience: 'https://mcp.example.com/mcp',
    scopes: [],
    roles: [],
    claims: {},
    expiresAt: 2_000_000_000,
    ...overrides,
  };
}
