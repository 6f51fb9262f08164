/**
 * Outbound HTTP to a URL a visitor names (a Client ID Metadata Document, a registered client's
 * `jwks_uri`), guarded against server-side request forgery *before* connecting: the host name is
 * resolved first, every resolved address is checked, and the socket connects only to the checked
 * addresses. A check after connecting (on the socket's peer address) is too late: the TCP
 * handshake and the TLS ClientHello have already reached the internal service, which is enough to
 * probe which internal ports are open.
 *
 * Order, per connection: (1) an IP-literal host (the WHATWG URL parser already turned
 * `2130706433`, `0x7f.1` and `127.1` into `127.0.0.1`) is checked as is; (2) a name is resolved
 * with every address (`dns.lookup`, `all: true`, as Happy Eyeballs asks), and one special-use
 * address refuses the whole name (a name that resolves to a public and a private address is
 * refused, not raced); (3) the socket connects to the addresses that passed. A redirect is a new
 * request through the same dispatcher, so it is checked again; callers refuse redirects anyway.
 * @see https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document (§6 SSRF)
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.15 (RFC 9700: SSRF via client metadata)
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { isSpecialUseAddress } from './special-use-address.ts';

/** A refused outbound connection: the host is or resolves to a special-use address. No byte was sent. */
export class OutboundAddressRefused extends Error {
  override name = 'OutboundAddressRefused';
  readonly code = 'ERR_OUTBOUND_ADDRESS_REFUSED';
  constructor(readonly host: string, readonly address: string) {
    super(`refused to connect to ${host}: it resolves to the special-use address ${address}`);
  }
}

function bare(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * A `lookup` for `net.connect`/`tls.connect` that resolves every address of a name and fails
 * with OutboundAddressRefused when any of them is special-use, so the socket can only be given
 * checked addresses. @see RFC 6890
 */
export function createGuardedLookup(resolve: typeof dnsLookup = dnsLookup, isRefused: (address: string) => boolean = isSpecialUseAddress): LookupFunction {
  return (hostname, options, callback) => {
    const host = bare(hostname);
    const family = isIP(host);
    const answer = (addresses: LookupAddress[]) => {
      if (options.all) (callback as unknown as (err: null, addresses: LookupAddress[]) => void)(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    };
    if (family !== 0) {
      if (isRefused(host)) return callback(new OutboundAddressRefused(hostname, host) as NodeJS.ErrnoException, '', 0);
      return answer([{ address: host, family }]);
    }
    resolve(host, { ...options, all: true } as LookupAllOptions, (err, addresses) => {
      if (err) return callback(err, '', 0);
      if (addresses.length === 0) return callback(Object.assign(new Error(`no address for ${host}`), { code: 'ENOTFOUND' }), '', 0);
      const refused = addresses.find((a) => isRefused(a.address));
      if (refused) return callback(new OutboundAddressRefused(hostname, refused.address) as NodeJS.ErrnoException, '', 0);
      answer(addresses);
    });
  };
}

export interface GuardedDispatcherOptions {
  /** Longest wait for a connection (TCP and TLS), in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** For tests: the resolver behind the guard (default `dns.lookup`). */
  resolve?: typeof dnsLookup;
  /** For tests: which addresses are refused (default isSpecialUseAddress). */
  isRefused?: (address: string) => boolean;
}

/**
 * An undici dispatcher that refuses to connect to special-use addresses (see the file comment for
 * the order of checks). Use it with undici's `fetch`/`request` for every URL a visitor names.
 * @see https://www.rfc-editor.org/rfc/rfc6890
 */
export function createGuardedDispatcher(options: GuardedDispatcherOptions = {}): Agent {
  const isRefused = options.isRefused ?? isSpecialUseAddress;
  const lookup = createGuardedLookup(options.resolve, isRefused);
  const connectTimeout = options.connectTimeoutMs ?? 5000;
  const connector = buildConnector({ timeout: connectTimeout, lookup });
  return new Agent({
    // Documents are small and rare: no idle sockets kept to hosts a visitor chose.
    keepAliveTimeout: 1000,
    keepAliveMaxTimeout: 1000,
    connect(opts, callback) {
      // net.connect skips `lookup` for an IP-literal host: check it here, before any socket exists.
      const host = bare(opts.hostname);
      if (isIP(host) !== 0 && isRefused(host)) return callback(new OutboundAddressRefused(opts.hostname, host), null);
      connector(opts, callback);
    },
  });
}
