/**
 * Configuration of the account area (`/account`): the page where a user stores
 * their own downstream credentials. Composed into the main schema by src/config/schema.ts.
 */
import { z } from 'zod';

export const accountSchema = z.strictObject({
  /**
   * Default: on when the embedded authorization server is used and at least one server has
   * `downstream.perUserSecret`; with an external issuer it needs `client` (below).
   */
  enabled: z.boolean().optional(),
  /** Minutes without a request after which a signed-in session ends. */
  idleTimeoutMinutes: z.number().int().min(1).max(24 * 60).default(15),
  /** Hours after sign-in at which a session ends however active it is. */
  maxSessionHours: z.number().int().min(1).max(7 * 24).default(8),
  /**
   * The account area's confidential OIDC client. Embedded authorization server: provisioned at
   * start (secret from here, $WARDEN_ACCOUNT_CLIENT_SECRET, or generated once and kept in the
   * database). External issuer: register a client there with redirect URI
   * `<publicUrl>/account/callback` and put its id and secret here.
   */
  client: z
    .strictObject({
      clientId: z.string().regex(/^[A-Za-z0-9._~:/-]+$/, 'a client_id of URL-safe characters').default('mcp-warden-account'),
      clientSecret: z.string().min(16, 'use at least 16 characters').optional(),
    })
    .optional(),
});

export type AccountConfig = z.infer<typeof accountSchema>;
