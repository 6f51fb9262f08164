/**
 * The `trustProxy` block of the configuration (composed into src/config/schema.ts): which
 * reverse proxies in front of mcp-warden may tell it the client's address. Off by default: the
 * client is the socket's peer and every forwarding header is ignored.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

/** `203.0.113.7`, `10.0.0.0/8`, `::1`, `fd00::/8`. */
const addressOrCidr = z.string().refine((value) => {
  const slash = value.indexOf('/');
  const ip = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return false;
  if (slash === -1) return true;
  const bits = value.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}, { message: 'must be an IP address or a CIDR block such as 10.0.0.0/8 or fd00::/8' });

export const trustProxySchema = z
  .strictObject({
    /** The proxies by address: every hop whose address is listed is skipped, nearest first. */
    addresses: z.array(addressOrCidr).min(1, 'list at least one proxy address or CIDR block').optional(),
    /** Or by count: the nearest N hops are proxies, whatever their address. */
    hops: z.number().int().min(1).max(16).optional(),
    /** Which header the proxies append to: X-Forwarded-For (default) or RFC 7239 Forwarded. */
    header: z.enum(['x-forwarded-for', 'forwarded']).default('x-forwarded-for'),
  })
  .refine((t) => (t.addresses === undefined) !== (t.hops === undefined), {
    message: 'give either addresses (the proxies\' IPs or CIDR blocks) or hops (how many proxies), not both',
  });

export type TrustProxyConfig = z.infer<typeof trustProxySchema>;
