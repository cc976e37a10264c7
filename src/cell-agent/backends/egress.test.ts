import { describe, expect, it } from 'vitest';
import { checkEgressRules, egressFromSecurityGroups, egressRuleError, ipv4Part, ruleMatches } from './egress.ts';
import { bridgeChainLines, containerChain, containerChainLines, jumpLine, logPrefix } from './firewall.ts';

describe('egressFromSecurityGroups', () => {
  it("converts Diego's rules as the executor converts them for Garden", () => {
    expect(
      egressFromSecurityGroups([
        { protocol: 'tcp', destinations: ['10.0.0.1', '10.1.0.0/16,10.2.0.1-10.2.0.9'], ports: [80, 443], log: true },
        { protocol: 'udp', destinations: ['0.0.0.0/0'], portRange: { start: 53, end: 54 } },
        { protocol: 'icmp', destinations: ['192.168.0.1'], icmpInfo: { type: -1, code: -1 } },
        { protocol: 'icmp', destinations: ['192.168.0.1'], icmpInfo: { type: 8 } },
        { protocol: 'all', destinations: ['2001:db8::/126'], annotations: ['x'] },
      ]),
    ).toEqual([
      {
        protocol: 'tcp',
        networks: [
          { start: '10.0.0.1', end: '10.0.0.1' },
          { start: '10.1.0.0', end: '10.1.255.255' },
          { start: '10.2.0.1', end: '10.2.0.9' },
        ],
        ports: [
          { start: 80, end: 80 },
          { start: 443, end: 443 },
        ],
        log: true,
      },
      { protocol: 'udp', networks: [{ start: '0.0.0.0', end: '255.255.255.255' }], ports: [{ start: 53, end: 54 }] },
      // Diego's -1 becomes Garden's byte 255: any type, any code.
      { protocol: 'icmp', networks: [{ start: '192.168.0.1', end: '192.168.0.1' }], icmp: { type: 255, code: 255 } },
      // A code left out of the protobuf is 0.
      { protocol: 'icmp', networks: [{ start: '192.168.0.1', end: '192.168.0.1' }], icmp: { type: 8, code: 0 } },
      { protocol: 'all', networks: [{ start: '2001:db8:0:0:0:0:0:0', end: '2001:db8:0:0:0:0:0:3' }] },
    ]);
    expect(egressFromSecurityGroups(undefined)).toEqual([]);
  });

  it('refuses an invalid rule, naming it', () => {
    expect(() => egressFromSecurityGroups([{ protocol: 'tcp', destinations: ['10.0.0.1'] }])).toThrow(
      'invalid egress rule: egressRules[0].ports: Missing required field: ports or portRange',
    );
    expect(() =>
      egressFromSecurityGroups([
        { protocol: 'all', destinations: ['10.0.0.1'] },
        { protocol: 'all', destinations: ['not-an-ip'] },
      ]),
    ).toThrow(/egressRules\[1\]\.destinations\.0: .*'not-an-ip': Invalid IP/);
  });
});

describe('egressRuleError', () => {
  it('accepts valid rules and says what is wrong with others', () => {
    checkEgressRules([
      { protocol: 'all' },
      { protocol: 'tcp', networks: [{ start: '10.0.0.1', end: '10.0.0.2' }], ports: [{ start: 1, end: 65535 }] },
      { protocol: 'icmp', icmp: { type: 8 } },
    ]);
    expect(egressRuleError({ protocol: 'sctp' as 'tcp' })).toBe("unknown protocol 'sctp'");
    expect(egressRuleError({ protocol: 'tcp', networks: [{ start: '10.0.0.2', end: '10.0.0.1' }] })).toMatch(
      /starts after its end/,
    );
    expect(egressRuleError({ protocol: 'tcp', networks: [{ start: 'x', end: '10.0.0.1' }] })).toMatch(/not a range/);
    expect(egressRuleError({ protocol: 'tcp', ports: [{ start: 0, end: 1 }] })).toMatch(/port range 0-1/);
    expect(egressRuleError({ protocol: 'tcp', ports: [{ start: 9, end: 8 }] })).toMatch(/port range 9-8/);
    expect(egressRuleError({ protocol: 'all', ports: [{ start: 1, end: 1 }] })).toMatch(/ports are for tcp and udp/);
    expect(egressRuleError({ protocol: 'udp', icmp: { type: 1 } })).toMatch(/icmp is for icmp rules/);
    expect(egressRuleError({ protocol: 'icmp', icmp: { type: 256 } })).toMatch(/0-255/);
    expect(() => checkEgressRules([{ protocol: 'all' }, { protocol: 'udp', icmp: { type: 1 } }])).toThrow(
      'egress rule 1: icmp is for icmp rules, not udp',
    );
  });
});

describe('ruleMatches', () => {
  it('turns a rule into iptables matches: destinations, ports, icmp', () => {
    expect(
      ruleMatches({
        protocol: 'tcp',
        networks: [
          { start: '10.0.0.1', end: '10.0.0.1' },
          { start: '10.0.1.0', end: '10.0.1.255' },
        ],
        ports: [
          { start: 80, end: 80 },
          { start: 8000, end: 8080 },
        ],
      }),
    ).toEqual([
      ['-p', 'tcp', '-d', '10.0.0.1/32', '-m', 'multiport', '--dports', '80,8000:8080'],
      [
        '-p',
        'tcp',
        '-m',
        'iprange',
        '--dst-range',
        '10.0.1.0-10.0.1.255',
        '-m',
        'multiport',
        '--dports',
        '80,8000:8080',
      ],
    ]);
    expect(ruleMatches({ protocol: 'udp' })).toEqual([['-p', 'udp']]);
    expect(ruleMatches({ protocol: 'all' })).toEqual([[]]);
    expect(ruleMatches({ protocol: 'icmp', icmp: { type: 8, code: 0 } })).toEqual([
      ['-p', 'icmp', '-m', 'icmp', '--icmp-type', '8/0'],
    ]);
    expect(ruleMatches({ protocol: 'icmp', icmp: { type: 3, code: 255 } })).toEqual([
      ['-p', 'icmp', '-m', 'icmp', '--icmp-type', '3'],
    ]);
    expect(ruleMatches({ protocol: 'icmp', icmp: { type: 255, code: 0 } })).toEqual([['-p', 'icmp']]);
    expect(ruleMatches({ protocol: 'icmp' })).toEqual([['-p', 'icmp']]);
  });

  it('groups ports by 15 multiport slots (a range takes two)', () => {
    const ports = Array.from({ length: 20 }, (_, i) => ({ start: 1000 + i, end: 1000 + i }));
    const groups = ruleMatches({ protocol: 'tcp', ports }).map((m) => m.at(-1)!.split(','));
    expect(groups.map((g) => g.length)).toEqual([15, 5]);
    const ranges = Array.from({ length: 8 }, (_, i) => ({ start: 100 * i + 1, end: 100 * i + 2 }));
    expect(ruleMatches({ protocol: 'udp', ports: ranges }).map((m) => m.at(-1)!.split(',').length)).toEqual([7, 1]);
  });

  it('keeps only IPv4: IPv6 destinations match nothing, never everything', () => {
    expect(ruleMatches({ protocol: 'all', networks: [{ start: '2001:db8::', end: '2001:db8::ff' }] })).toEqual([]);
    expect(ruleMatches({ protocol: 'icmpv6', icmp: { type: 128 } })).toEqual([]);
    expect(
      ruleMatches({
        protocol: 'all',
        networks: [
          { start: '2001:db8::', end: '2001:db8::ff' },
          { start: '10.0.0.1', end: '10.0.0.1' },
        ],
      }),
    ).toEqual([['-d', '10.0.0.1/32']]);
    // A range across IPv4-mapped and other IPv6 addresses keeps its IPv4 part.
    expect(ipv4Part({ start: '::1', end: '1.2.3.4' })).toEqual({ start: '0.0.0.0', end: '1.2.3.4' });
    expect(ipv4Part({ start: '10.0.0.1', end: 'ffff::' })).toEqual({ start: '10.0.0.1', end: '255.255.255.255' });
    expect(ipv4Part({ start: '::1', end: '::2' })).toBeUndefined();
  });
});

describe('firewall rules', () => {
  it('names chains within iptables limits', () => {
    const chain = containerChain(`diego-${'x'.repeat(255)}`);
    expect(chain).toMatch(/^DGE-[0-9a-f]{24}$/);
    expect(containerChain('diego-a')).not.toBe(containerChain('diego-b'));
    expect(logPrefix('a'.repeat(40))).toBe(`${'a'.repeat(28)} `);
  });

  it("fills a container's chain: allowed traffic, LOG before a logged rule's ACCEPT, REJECT last", () => {
    expect(
      containerChainLines('DGE-1', 'web-0', [
        {
          protocol: 'tcp',
          networks: [{ start: '10.0.0.1', end: '10.0.0.1' }],
          ports: [{ start: 80, end: 80 }],
          log: true,
        },
        {
          protocol: 'tcp',
          networks: [{ start: '10.0.0.1', end: '10.0.0.1' }],
          ports: [{ start: 80, end: 80 }],
          log: true,
        },
        { protocol: 'all', networks: [{ start: '2001:db8::', end: '2001:db8::' }] },
      ]),
    ).toEqual([
      ':DGE-1 - [0:0]',
      '-A DGE-1 -p tcp -d 10.0.0.1/32 -m multiport --dports 80 -m conntrack --ctstate NEW -m comment --comment web-0 -j LOG --log-prefix "web-0 "',
      '-A DGE-1 -p tcp -d 10.0.0.1/32 -m multiport --dports 80 -m comment --comment web-0 -j ACCEPT',
      '-A DGE-1 -m comment --comment web-0 -j REJECT --reject-with icmp-port-unreachable',
    ]);
    expect(jumpLine('br0', 'DGE-1', 'web-0', '10.254.0.2', 'veth1')).toBe(
      '-A DGC-br0 -s 10.254.0.2/32 -m physdev --physdev-in veth1 -m comment --comment web-0 -g DGE-1',
    );
    expect(jumpLine('br0', 'DGE-1', 'web-0', '10.254.0.2', undefined)).toBe(
      '-A DGC-br0 -s 10.254.0.2/32 -m comment --comment web-0 -g DGE-1',
    );
  });

  it('lets replies and DNS through the bridge chains and refuses the rest', () => {
    expect(bridgeChainLines('br0', ['10.254.0.1'])).toEqual([
      ':DGI-br0 - [0:0]',
      '-A DGI-br0 -m conntrack --ctstate RELATED,ESTABLISHED --ctdir REPLY -j ACCEPT',
      '-A DGI-br0 -p udp -d 10.254.0.1/32 -m udp --dport 53 -j ACCEPT',
      '-A DGI-br0 -p tcp -d 10.254.0.1/32 -m tcp --dport 53 -j ACCEPT',
      '-A DGI-br0 -j REJECT --reject-with icmp-port-unreachable',
      ':DGF-br0 - [0:0]',
      '-A DGF-br0 -m conntrack --ctstate RELATED,ESTABLISHED --ctdir REPLY -j ACCEPT',
      '-A DGF-br0 -p udp -d 10.254.0.1/32 -m udp --dport 53 -j ACCEPT',
      '-A DGF-br0 -p tcp -d 10.254.0.1/32 -m tcp --dport 53 -j ACCEPT',
      '-A DGF-br0 -j DGC-br0',
      '-A DGF-br0 -j REJECT --reject-with icmp-port-unreachable',
    ]);
  });
});
