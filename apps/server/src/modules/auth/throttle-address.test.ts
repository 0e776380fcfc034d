import { describe, expect, it } from 'vitest';
import { throttleAddress } from './throttle-address.ts';

describe('throttleAddress', () => {
  it('counts an IPv6 client by its /64, however the address is written', () => {
    const key = throttleAddress('2001:db8:0:1::1');
    expect(key).toBe('2001:db8:0:1::/64');
    for (const same of [
      '2001:db8:0:1:ffff:ffff:ffff:ffff',
      '2001:0DB8:0000:0001:a:b:c:d',
      '2001:db8::1:0:0:0:5',
      '2001:db8:0:1::192.0.2.7',
      '2001:db8:0:1::9%eth0',
    ])
      expect(throttleAddress(same), same).toBe(key);
    for (const other of ['2001:db8:0:2::1', '2001:db8::1', '::1', '2001:db9:0:1::1'])
      expect(throttleAddress(other), other).not.toBe(key);
    expect(throttleAddress('::')).toBe('0:0:0:0::/64');
  });

  it('counts IPv4 clients, also as a dual-stack socket reports them, by their address', () => {
    expect(throttleAddress('192.0.2.1')).toBe('192.0.2.1');
    expect(throttleAddress('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(throttleAddress('::ffff:c000:201')).toBe('192.0.2.1');
    expect(throttleAddress('192.0.2.2')).not.toBe('192.0.2.1');
  });

  it('keeps anything else as it is, cut to 64 characters', () => {
    expect(throttleAddress('unknown')).toBe('unknown');
    expect(throttleAddress('x'.repeat(100))).toBe('x'.repeat(64));
  });
});
