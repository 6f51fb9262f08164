/**
 * Special-use IP addresses (RFC 6890 registries): the addresses an outbound fetch of a URL that a
 * visitor names must never reach (loopback, private, link-local, carrier-grade NAT, unique-local,
 * multicast, documentation and translation ranges). A URL naming one is how server-side request
 * forgery reaches the cloud metadata service or an internal admin port.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const IPV4_RANGES: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], //        RFC 791 "this network" (0.0.0.0 reaches the local host on Linux)
  ['10.0.0.0', 8], //       RFC 1918 private
  ['100.64.0.0', 10], //    RFC 6598 shared address space (carrier-grade NAT)
  ['127.0.0.0', 8], //      RFC 1122 loopback
  ['169.254.0.0', 16], //   RFC 3927 link-local (cloud metadata 169.254.169.254)
  ['172.16.0.0', 12], //    RFC 1918 private
  ['192.0.0.0', 24], //     RFC 6890 IETF protocol assignments
  ['192.0.2.0', 24], //     RFC 5737 documentation
  ['192.88.99.0', 24], //   RFC 7526 6to4 relay anycast
  ['192.168.0.0', 16], //   RFC 1918 private
  ['198.18.0.0', 15], //    RFC 2544 benchmarking
  ['198.51.100.0', 24], //  RFC 5737 documentation
  ['203.0.113.0', 24], //   RFC 5737 documentation
  ['224.0.0.0', 4], //      RFC 5771 multicast
  ['240.0.0.0', 4], //      RFC 1112 reserved, and 255.255.255.255 broadcast
];

const IPV6_RANGES: ReadonlyArray<readonly [string, number]> = [
  ['::', 96], //            RFC 4291 unspecified, loopback ::1 and the deprecated IPv4-compatible ::a.b.c.d
  ['64:ff9b::', 96], //     RFC 6052 NAT64 well-known prefix (reaches any IPv4 address, private ones included)
  ['64:ff9b:1::', 48], //   RFC 8215 local-use NAT64
  ['100::', 64], //         RFC 6666 discard-only
  ['2001::', 23], //        RFC 2928 IETF protocol assignments (Teredo 2001::/32 embeds IPv4)
  ['2001:db8::', 32], //    RFC 3849 documentation
  ['2002::', 16], //        RFC 3056 6to4 (embeds IPv4)
  ['fc00::', 7], //         RFC 4193 unique-local
  ['fe80::', 10], //        RFC 4291 link-local
  ['fec0::', 10], //        RFC 3879 deprecated site-local
  ['ff00::', 8], //         RFC 4291 multicast
];

const blocked = new BlockList();
for (const [network, prefix] of IPV4_RANGES) blocked.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of IPV6_RANGES) blocked.addSubnet(network, prefix, 'ipv6');

/**
 * The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) stands for:
 * a socket connected to `::ffff:127.0.0.1` talks to 127.0.0.1.
 */
function mappedIpv4(address: string): string | undefined {
  const groups = expandIpv6(address);
  if (!groups) return undefined;
  if (groups.slice(0, 5).some((g) => g !== 0) || groups[5] !== 0xffff) return undefined;
  return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
}

/** The eight 16-bit groups of an IPv6 address in text form (RFC 4291 §2.2), or undefined. */
function expandIpv6(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const dotted = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (dotted) {
    const octets = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, dotted.index)}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * True when `address` (an IP address in text form, as `dns.lookup` returns it or a URL host
 * names it) is special-use, or is not an IP address at all (nothing unknown is trusted).
 * @see https://www.rfc-editor.org/rfc/rfc6890 (special-purpose address registries)
 */
export function isSpecialUseAddress(address: string): boolean {
  const ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (isIPv4(ip)) return blocked.check(ip, 'ipv4');
  if (!isIPv6(ip)) return true;
  const v4 = mappedIpv4(ip);
  if (v4 !== undefined) return blocked.check(v4, 'ipv4');
  return blocked.check(ip.replace(/%.*$/, ''), 'ipv6');
}
