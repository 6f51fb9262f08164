/**
 * The `Host` allow-list: DNS-rebinding defence in depth (MCP 2025-11-25 security best practices
 * and transports §Security Warning). A page on `evil.example` whose name an attacker re-points at
 * this gateway's address makes the browser send `Host: evil.example`; the Origin check stops
 * scripted requests that carry an Origin, this stops every request, on every route the warden
 * serves (gateway, metadata, authorization server, account page), before authentication.
 *
 * Allowed: the host of `publicUrl` (what a reverse proxy forwards), the `allowedHosts` entries,
 * and, when the listener accepts loopback connections (bound to a loopback or a wildcard address),
 * `localhost`, `127.0.0.1` and `[::1]` at the listening port: no attacker can point those names
 * elsewhere, and the account area signs in through the loopback origin. Anything else, a missing or malformed `Host` included, gets
 * 421 Misdirected Request (RFC 9110 §15.5.20: this server will not produce an authoritative
 * answer for that authority).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';

export interface HostPolicyOptions {
  /** `publicUrl` of the configuration. */
  publicUrl: string;
  /** `allowedHosts`: `host` (any port) or `host:port`; IPv6 literals in brackets. */
  allowedHosts: readonly string[];
  /** `listen.host` and the port actually bound. */
  listenHost: string;
  port: number;
}

// RFC 9110 §7.2 / RFC 3986 §3.2.2: reg-name or IPv4 (no percent-encoding accepted), or an
// IP-literal in brackets, then an optional port. Anything else (userinfo, paths, spaces) is refused.
const HOST = /^(?:([a-z0-9._~-]+)|(\[[0-9a-f:.]+\]))(?::(\d{1,5}))?$/i;

interface HostValue {
  /** Lower-case; IPv6 literals keep their brackets. */
  name: string;
  /** The port as written, '' when absent. */
  port: string;
}

/** Splits a `Host` value into name and port; undefined when it is not a valid `uri-host [":" port]`. */
export function parseHost(value: string | undefined): HostValue | undefined {
  if (value === undefined) return undefined;
  const m = HOST.exec(value);
  if (!m) return undefined;
  return { name: (m[1] ?? m[2]!).toLowerCase(), port: m[3] ?? '' };
}

/** Whether a listener bound to `host` accepts loopback connections (127.0.0.0/8, ::1, localhost, or a wildcard address). */
export function acceptsLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0.0.0.0' || h === '::') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * Builds the check: true when the request's `Host` is one this warden serves.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-15.5.20
 */
export function createHostPolicy(options: HostPolicyOptions): (req: IncomingMessage) => boolean {
  /** name → ports allowed ('*': any port). */
  const allowed = new Map<string, Set<string>>();
  const allow = (name: string, ...ports: string[]) => {
    const set = allowed.get(name) ?? new Set<string>();
    for (const p of ports) set.add(p);
    allowed.set(name, set);
  };
  const pub = new URL(options.publicUrl);
  const defaultPort = pub.protocol === 'https:' ? '443' : '80';
  // `Host: name` and `Host: name:<default port>` name the same authority (RFC 9110 §4.2.3).
  if (pub.port === '' || pub.port === defaultPort) allow(pub.hostname.toLowerCase(), '', defaultPort);
  else allow(pub.hostname.toLowerCase(), pub.port);
  for (const entry of options.allowedHosts) {
    const h = parseHost(entry.trim());
    if (!h) throw new Error(`allowedHosts: ${JSON.stringify(entry)} is not a host or host:port`);
    allow(h.name, h.port === '' ? '*' : h.port);
  }
  if (acceptsLoopback(options.listenHost)) {
    for (const name of ['localhost', '127.0.0.1', '[::1]']) allow(name, String(options.port));
  }
  const judge = (value: string | undefined): boolean => {
    const h = parseHost(value);
    if (!h) return false;
    const ports = allowed.get(h.name);
    return ports !== undefined && (ports.has('*') || ports.has(h.port));
  };
  // The allow-list is fixed, and a client names the same Host on every request of a connection:
  // the last value's answer is kept, so a repeat is one string comparison, not a regex and a split.
  let lastValue: string | undefined;
  let lastAnswer = false;
  return (req) => {
    const value = req.headers.host;
    if (value === undefined) return false;
    if (value !== lastValue) {
      lastAnswer = judge(value);
      lastValue = value;
    }
    return lastAnswer;
  };
}

/** The 421 answer: short, not cached, and the connection closed (RFC 9110 §15.5.20: retry on another connection). */
export function sendMisdirected(res: ServerResponse): void {
  const body = 'Misdirected Request: this server does not serve the host named in the Host header\n';
  res.writeHead(421, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    Connection: 'close',
  });
  res.end(body);
}
