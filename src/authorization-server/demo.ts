/**
 * Demo mode (`embedded.demo`, used by `npm start`): users alice (admin) and bob (member), and the
 * confidential client `demo-agent` for client credentials. Seeded once; generated secrets are
 * announced once, at the moment they are created, and never again.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { UserStore } from '../users/user-store.ts';
import type { ClientRegistry } from './clients.ts';

export const DEMO_AGENT_CLIENT_ID = 'demo-agent';

/** Seeds alice, bob and demo-agent when absent; announces generated secrets once. */
export async function seedDemo(o: { config: Config; users: UserStore; clients: ClientRegistry; env: NodeJS.ProcessEnv; announce: (line: string) => void }): Promise<void> {
  const missing: Array<[string, string[]]> = [];
  for (const [name, roles] of [['alice', ['admin']], ['bob', ['member']]] as Array<[string, string[]]>) {
    if (!await o.users.get(name)) missing.push([name, roles]);
  }
  if (missing.length) {
    const fromEnv = o.env.WARDEN_DEMO_PASSWORD;
    const password = fromEnv ?? randomBytes(12).toString('base64url');
    for (const [name, roles] of missing) await o.users.add(name, password, roles);
    if (!fromEnv) o.announce(`demo users ${missing.map(([n]) => n).join(' and ')} created with password: ${password}`);
  }
  if (!(await o.clients.list()).some((c) => c.clientId === DEMO_AGENT_CLIENT_ID)) {
    const fromEnv = o.env.WARDEN_DEMO_CLIENT_SECRET;
    const scope = [...new Set(o.config.servers.flatMap((s) => s.scopes))].join(' ');
    const { clientSecret } = await o.clients.add({
      clientId: DEMO_AGENT_CLIENT_ID, clientName: 'Demo agent', type: 'confidential', grantTypes: ['client_credentials'],
      ...(scope ? { scope } : {}), ...(fromEnv ? { clientSecret: fromEnv } : {}),
    });
    if (!fromEnv) o.announce(`demo client ${DEMO_AGENT_CLIENT_ID} created with client_secret: ${clientSecret}`);
  }
}
