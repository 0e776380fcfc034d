import { isIPv4, isIPv6 } from 'node:net';

/**
 * The part of a client's address the login throttle counts failures against. An IPv6 client
 * usually holds a whole /64 (and picks a new address in it at will: privacy extensions), so
 * counting full IPv6 addresses would give one attacker 2^64 fresh counters; the /64 is what one
 * site or subscriber gets. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack
 * socket reports) is its IPv4 address. Anything else (no address known) is kept as it is.
 */
export function throttleAddress(address: string): string {
  const plain = address.replace(/%.*$/, ''); // a zone index (fe80::1%eth0) names the interface, not the host
  if (isIPv4(plain)) return plain;
  if (!isIPv6(plain)) return address.slice(0, 64);
  const groups = ipv6Groups(plain);
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing dotted IPv4 included). */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string | undefined) =>
    part ? part.split(':').map((g) => Number.parseInt(g, 16)) : [];
  const front = parse(head);
  const back = parse(tail);
  return [...front, ...Array(8 - front.length - back.length).fill(0), ...back];
}
