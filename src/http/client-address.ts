/**
 * The client's address behind reverse proxies, for rate limits and audit: the socket's peer,
 * or, through configured trusted proxies only, the address they forwarded. A forwarding header
 * from a peer that is not a trusted proxy is ignored, so a client cannot pick its own address.
 * URLs are never derived from forwarding headers: publicUrl defines every canonical URI.
 */
import { LRUCache } from 'lru-cache';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { TrustProxyConfig } from './trust-proxy-schema.ts';

/** Reads the client address of a request. */
export type ClientAddressResolver = (req: IncomingMessage) => string;

/** `::ffff:192.0.2.1` (an IPv4 peer on a dual-stack socket) is `192.0.2.1`. */
function normalize(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address.toLowerCase();
}

/**
 * One node of a forwarding chain as an IP address, or undefined: strips an RFC 7239 §6 port and
 * IPv6 brackets (`[2001:db8::1]:4711`, `192.0.2.1:80`); `unknown` and obfuscated identifiers
 * (RFC 7239 §6.2, §6.3) are not addresses.
 */
export function parseNode(node: string): string | undefined {
  let v = node.trim();
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end === -1) return undefined;
    v = v.slice(1, end);
  } else if (isIP(v) === 0) {
    const colon = v.lastIndexOf(':');
    if (colon !== -1 && v.indexOf(':') === colon) v = v.slice(0, colon); // IPv4 with a port
  }
  return isIP(v) === 0 ? undefined : normalize(v);
}

/**
 * The `for` parameters of an RFC 7239 §4 `Forwarded` field value, in order. Parsed character by
 * character: a quoted-string (RFC 7230 §3.2.6) may hold `,` `;` and `"`-escapes.
 * @see https://www.rfc-editor.org/rfc/rfc7239#section-4
 */
export function parseForwardedFor(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  let current: string | undefined;
  while (i < value.length) {
    while (i < value.length && (value[i] === ' ' || value[i] === '\t')) i++;
    let name = '';
    while (i < value.length && value[i] !== '=' && value[i] !== ';' && value[i] !== ',') name += value[i++];
    let param = '';
    if (value[i] === '=') {
      i++;
      if (value[i] === '"') {
        i++;
        while (i < value.length && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < value.length) i++;
          param += value[i++];
        }
        i++; // closing quote
      } else {
        while (i < value.length && value[i] !== ';' && value[i] !== ',') param += value[i++];
      }
    }
    if (name.trim().toLowerCase() === 'for') current = param.trim();
    while (i < value.length && value[i] !== ';' && value[i] !== ',') i++; // junk after a value
    if (value[i] === ',' || i >= value.length) {
      // Every forwarded-element names one hop; one without `for` keeps its place in the chain.
      out.push(current ?? '');
      current = undefined;
    }
    i++;
  }
  return out;
}

/** The forwarded chain, client first, as the proxies wrote it (one entry per hop). */
function forwardedChain(req: IncomingMessage, header: TrustProxyConfig['header']): string[] {
  const raw = req.headers[header];
  const value = Array.isArray(raw) ? raw.join(',') : raw;
  if (!value) return [];
  return header === 'forwarded' ? parseForwardedFor(value) : value.split(',').map((s) => s.trim());
}

/**
 * Builds the resolver for a `trustProxy` setting (undefined: the socket's peer, headers ignored).
 *
 * The chain is read right to left, nearest hop first (RFC 7239 §5.2: each proxy appends the
 * address it received the request from). Starting at the socket's peer, while the current hop
 * is a trusted proxy, step to the address it forwarded; the first hop that is not trusted is
 * the client. An entry a trusted proxy wrote that is not an address (`unknown`) ends the walk at
 * that proxy, so everyone behind it shares one address rather than choosing one.
 * @see https://www.rfc-editor.org/rfc/rfc7239#section-5.2
 */
export function createClientAddressResolver(trust: TrustProxyConfig | undefined): ClientAddressResolver {
  const socketAddress = (req: IncomingMessage) => normalize(req.socket.remoteAddress ?? 'unknown');
  if (!trust) return socketAddress;

  let isTrusted: (address: string, index: number) => boolean;
  if (trust.addresses) {
    const list = new BlockList();
    for (const entry of trust.addresses) {
      const [ip, bits] = entry.split('/') as [string, string | undefined];
      const family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) list.addAddress(ip, family);
      else list.addSubnet(ip, Number(bits), family);
    }
    // BlockList.check costs microseconds; the same few proxy addresses recur, so answers are
    // remembered (bounded: cleared when full).
    const known = new LRUCache<string, boolean>({ max: 4096 });
    isTrusted = (address) => {
      let trusted = known.get(address);
      if (trusted === undefined) {
        const family = isIP(address);
        trusted = family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
        known.set(address, trusted);
      }
      return trusted;
    };
  } else {
    const hops = trust.hops!;
    isTrusted = (_address, index) => index < hops;
  }

  return (req) => {
    let client = socketAddress(req);
    if (!isTrusted(client, 0)) return client;
    const chain = forwardedChain(req, trust.header);
    for (let n = 1, i = chain.length - 1; i >= 0; n++, i--) {
      const forwarded = parseNode(chain[i]!);
      if (forwarded === undefined) return client;
      client = forwarded;
      if (!isTrusted(client, n)) return client;
    }
    return client;
  };
}
