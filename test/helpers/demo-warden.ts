/**
 * mcp-warden with the demo configuration (`start --demo`: gateway + embedded AS, demo user alice)
 * in a temp directory, for client tests: refresh tokens rotate with no grace (refreshGraceSeconds 0),
 * so a reused refresh token fails at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import type { Config } from '../../src/config/schema.ts';

export interface DemoWarden {
  warden: Warden;
  /** The temp directory (the database is in it; tests may put client homes there too). */
  dir: string;
  /** The MCP endpoint of the demo server. */
  endpoint: string;
  /** Closes the warden and removes `dir`. */
  close(): Promise<void>;
}

export async function startDemoWarden(options: { dirPrefix: string; password: string; clientSecret: string }): Promise<DemoWarden> {
  const dir = mkdtempSync(join(tmpdir(), options.dirPrefix));
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db'), WARDEN_DEMO_PASSWORD: options.password, WARDEN_DEMO_CLIENT_SECRET: options.clientSecret };
  const config = (port: number): Config => {
    const demo = buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` });
    const as = demo.authorizationServer as { embedded: Record<string, unknown> };
    return { ...demo, authorizationServer: { embedded: { ...as.embedded, refreshGraceSeconds: 0 } } } as Config;
  };
  let warden: Warden;
  try {
    warden = await startWarden(config, { env, announce: () => {} });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    warden,
    dir,
    endpoint: `${warden.config.publicUrl}/mcp`,
    async close() {
      await warden.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
