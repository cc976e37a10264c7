import { describe, expect, it } from 'vitest';
import {
  formatIp,
  parseCidr,
  parseDestination,
  parseIp,
  securityGroupRuleIssues,
  type SecurityGroupRuleFields,
} from './security-group.ts';

const text = (r: ReturnType<typeof parseDestination>) =>
  'error' in r ? r.error : `${formatIp(r.start)}-${formatIp(r.end)}`;

describe('address parsing (Go net.ParseIP / ParseCIDR)', () => {
  it('parses IPv4 and IPv6 addresses as Go does', () => {
    expect(formatIp(parseIp('10.0.0.1')!)).toBe('10.0.0.1');
    expect(formatIp(parseIp('::ffff:10.0.0.1')!)).toBe('10.0.0.1'); // IPv4-mapped is IPv4
    expect(formatIp(parseIp('2001:db8::1')!)).toBe('2001:db8:0:0:0:0:0:1');
    expect(formatIp(parseIp('::')!)).toBe('0:0:0:0:0:0:0:0');
    expect(formatIp(parseIp('1:2:3:4:5:6:1.2.3.4')!)).toBe('1:2:3:4:5:6:102:304');
    for (const bad of [
      '',
      'not-an-ip',
      '10.0.0',
      '10.0.0.1.2',
      '10.0.0.256',
      '010.0.0.1', // leading zeros: rejected since Go 1.17
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7:8::', // '::' must stand for at least one group
      '12345::',
      'fe80::1%eth0', // no zones
      '::1.2.3',
      ':1:2:3:4:5:6:7',
      '1.2.3.4::',
    ]) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
  });

  it('parses CIDRs into their first and last address', () => {
    const range = (s: string) => {
      const r = parseCidr(s);
      return 'error' in r ? r.error : `${formatIp(r.start)}-${formatIp(r.end)}`;
    };
    expect(range('1.2.3.4/16')).toBe('1.2.0.0-1.2.255.255');
    expect(range('10.0.0.1/32')).toBe('10.0.0.1-10.0.0.1');
    expect(range('0.0.0.0/0')).toBe('0.0.0.0-255.255.255.255');
    expect(range('10.0.0.0/008')).toBe('10.0.0.0-10.255.255.255'); // Go's dtoi takes leading zeros
    expect(range('2001:db8::/126')).toBe('2001:db8:0:0:0:0:0:0-2001:db8:0:0:0:0:0:3');
    expect(range('::ffff:1.2.3.4/120')).toBe('1.2.3.0-1.2.3.255'); // 128-bit prefix on an IPv4-mapped address
    for (const bad of ['1.2.3.4/33', '1.2.3.4/', '1.2.3.4/+8', '1.2.3/8', '::1/129', '1.2.3.4/8/8']) {
      expect(range(bad), bad).toBe(`invalid CIDR address: ${bad}`);
    }
  });

  it("tells an IP, a range and a CIDR apart by the first '-' or '/', as Diego does", () => {
    expect(text(parseDestination('10.0.0.1'))).toBe('10.0.0.1-10.0.0.1');
    expect(text(parseDestination('10.0.0.1-10.0.0.9'))).toBe('10.0.0.1-10.0.0.9');
    expect(text(parseDestination('10.0.0.5-10.0.0.5'))).toBe('10.0.0.5-10.0.0.5');
    expect(text(parseDestination('10.0.0.9-10.0.0.1'))).toMatch(/^Invalid IP/);
    expect(text(parseDestination('10.0.1.0-10.0.0.255'))).toMatch(/^Invalid IP/);
    expect(text(parseDestination('1.2.3.4-1.2.3.5/2'))).toBe('Invalid IP');
    expect(text(parseDestination('1.2.3.4/24-5'))).toBe('invalid CIDR address: 1.2.3.4/24-5');
    expect(text(parseDestination('::1-1.2.3.4'))).toBe('0:0:0:0:0:0:0:1-1.2.3.4'); // byte order, as Diego
    expect(text(parseDestination('1.2.3.4-::1'))).toMatch(/^Invalid IP/);
  });
});

describe("securityGroupRuleIssues (Diego's SecurityGroupRule.Validate)", () => {
  const rule = (r: Partial<SecurityGroupRuleFields>): SecurityGroupRuleFields => ({
    protocol: 'tcp',
    destinations: ['1.2.3.4/16'],
    ports: [80],
    ...r,
  });
  const fields = (r: Partial<SecurityGroupRuleFields>) => securityGroupRuleIssues(rule(r)).map((i) => i.path.join('.'));

  it('accepts what Diego accepts', () => {
    for (const r of [
      {},
      { ports: undefined, portRange: { start: 1, end: 65535 } },
      { protocol: 'udp', ports: [53, 5353] },
      { protocol: 'icmp', ports: undefined, icmpInfo: { type: 8, code: 0 } },
      { protocol: 'icmpv6', ports: undefined, icmpInfo: { type: -1, code: -1 } },
      { protocol: 'all', ports: undefined },
      { destinations: ['10.0.0.1,10.0.0.2-10.0.0.9', '2001:db8::/32', '::1-::2'] },
    ]) {
      expect(securityGroupRuleIssues(rule(r)), JSON.stringify(r)).toEqual([]);
    }
  });

  it('tcp and udp need ports or portRange, one of them, and no icmpInfo', () => {
    expect(securityGroupRuleIssues(rule({ ports: undefined }))).toEqual([
      { path: ['ports'], message: 'Missing required field: ports or portRange' },
    ]);
    expect(fields({ protocol: 'udp', ports: undefined })).toEqual(['ports']);
    expect(securityGroupRuleIssues(rule({ portRange: { start: 1, end: 2 } }))[0]?.message).toBe(
      'Invalid: ports and portRange provided',
    );
    expect(fields({ ports: undefined, portRange: { start: 1024, end: 1 } })).toEqual(['portRange']);
    expect(fields({ ports: undefined, portRange: { start: 0, end: 1 } })).toEqual(['portRange']);
    expect(fields({ ports: [] })).toEqual(['ports']);
    expect(fields({ ports: [0] })).toEqual(['ports']);
    expect(fields({ icmpInfo: { type: 0, code: 0 } })).toEqual(['icmpInfo']);
  });

  it('icmp and icmpv6 need icmpInfo and take no ports; all takes none of them', () => {
    expect(fields({ protocol: 'icmp', ports: undefined })).toEqual(['icmpInfo']);
    expect(fields({ protocol: 'icmpv6', ports: undefined })).toEqual(['icmpInfo']);
    expect(fields({ protocol: 'icmp', icmpInfo: {}, portRange: { start: 1, end: 2 } })).toEqual(['portRange', 'ports']);
    expect(fields({ protocol: 'all', ports: [1], portRange: { start: 1, end: 2 }, icmpInfo: {} })).toEqual([
      'portRange',
      'ports',
      'icmpInfo',
    ]);
    expect(fields({ protocol: 'sctp' })).toEqual(['protocol']);
  });

  it('checks every destination, commas splitting them', () => {
    expect(securityGroupRuleIssues(rule({ destinations: ['10.0.0.1', '10.0.0.1,not-an-ip'] }))).toEqual([
      { path: ['destinations', 1], message: expect.stringContaining("'not-an-ip': Invalid IP") },
    ]);
    expect(fields({ destinations: ['10.0.0.9-10.0.0.1'] })).toEqual(['destinations.0']);
    expect(fields({ destinations: ['10.0.0.1,'] })).toEqual(['destinations.0']);
    expect(fields({ destinations: [] })).toEqual(['destinations']);
  });
});
