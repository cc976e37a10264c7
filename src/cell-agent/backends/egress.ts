// Egress rules, pure: Diego's security group rules (the CRDs' egressRules) → backend EgressRules (Garden's
// NetOutRule), as Diego's executor converts them for Garden; checks of EgressRules from any caller; and the
// iptables matches an EgressRule stands for, which firewall.ts installs on the host.
//
// Conversion, as the executor's: each rule keeps its protocol; destinations (commas split them) become address
// ranges (an IP is a one-address range, a CIDR its first to last address); ports become one-port ranges and
// portRange one range; icmpInfo's type and code become bytes as Garden has them (Diego's -1 is 255, "any").
//
// Matches (IPv4 only: containers get only an IPv4 address, so an IPv6 destination cannot be reached anyway):
// a range with one address is `-d a/32`, a longer one `-m iprange --dst-range a-b`; IPv6 ranges are dropped,
// and a range that spans IPv4-mapped and other IPv6 addresses keeps its IPv4 part. A rule whose destinations
// are all IPv6 matches nothing (never "anywhere"). tcp/udp ports go in multiport groups (15 slots, a range takes
// two); icmp's type and code in `--icmp-type type[/code]`, left out for "any"; icmpv6 rules match nothing.
import type { z } from 'zod';
import type { SecurityGroupRule } from '../../crds/common.ts';
import {
  compareIp,
  formatIp,
  isIPv4,
  parseDestination,
  parseIp,
  securityGroupRuleIssues,
  splitDestinations,
  type IpBytes,
} from '../../crds/security-group.ts';
import type { EgressRule } from './types.ts';

export type SecurityGroupRuleSpec = z.infer<typeof SecurityGroupRule>;

/** Garden's ICMP type or code byte for "every type" / "every code" (Diego's -1). */
export const ICMP_ANY = 255;

/**
 * The EgressRules for a DesiredLRP's or Task's `spec.egressRules`, as Diego's executor converts them for
 * Garden. Throws, naming the rule, when one is invalid by Diego's rules (the executor then fails the container,
 * as Diego's does); the admission webhook refuses such rules before they get here.
 */
export function egressFromSecurityGroups(rules: readonly SecurityGroupRuleSpec[] | undefined): EgressRule[] {
  return (rules ?? []).map((rule, i) => {
    const issues = securityGroupRuleIssues(rule);
    if (issues.length > 0) {
      const text = issues.map((p) => `${[`egressRules[${i}]`, ...p.path].join('.')}: ${p.message}`).join('; ');
      throw new Error(`invalid egress rule: ${text}`);
    }
    const out: EgressRule = { protocol: rule.protocol };
    out.networks = splitDestinations(rule.destinations).map((d) => {
      const range = parseDestination(d);
      if ('error' in range) throw new Error(`invalid egress rule: egressRules[${i}].destinations: ${range.error}`);
      return { start: formatIp(range.start), end: formatIp(range.end) };
    });
    if (rule.portRange) out.ports = [{ start: rule.portRange.start, end: rule.portRange.end }];
    else if (rule.ports) out.ports = rule.ports.map((p) => ({ start: p, end: p }));
    if (rule.icmpInfo) out.icmp = { type: byte(rule.icmpInfo.type ?? 0), code: byte(rule.icmpInfo.code ?? 0) };
    if (rule.log) out.log = true;
    return out;
  });
}

/** Go's uint8(x), as the executor turns Diego's int32 ICMP type and code into Garden's bytes. */
function byte(n: number): number {
  return ((n % 256) + 256) % 256;
}

/** Why an EgressRule cannot be enforced as written, or undefined when it is valid. */
export function egressRuleError(rule: EgressRule): string | undefined {
  const protocols = ['tcp', 'udp', 'icmp', 'icmpv6', 'all'];
  if (!protocols.includes(rule.protocol)) return `unknown protocol '${String(rule.protocol)}'`;
  for (const n of rule.networks ?? []) {
    const start = parseIp(n.start);
    const end = parseIp(n.end);
    if (!start || !end) return `network ${n.start}-${n.end} is not a range of IP addresses`;
    if (compareIp(start, end) > 0) return `network ${n.start}-${n.end} starts after its end`;
  }
  const ports = rule.ports ?? [];
  if (ports.length > 0 && rule.protocol !== 'tcp' && rule.protocol !== 'udp') {
    return `ports are for tcp and udp rules, not ${rule.protocol}`;
  }
  for (const p of ports) {
    const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
    if (!ok(p.start) || !ok(p.end) || p.start > p.end)
      return `port range ${p.start}-${p.end} is not 1 <= start <= end <= 65535`;
  }
  if (rule.icmp) {
    if (rule.protocol !== 'icmp' && rule.protocol !== 'icmpv6') return `icmp is for icmp rules, not ${rule.protocol}`;
    const ok = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 0 && n <= 255);
    if (!ok(rule.icmp.type) || !ok(rule.icmp.code)) return 'icmp type and code are 0-255 (255: any)';
  }
  return undefined;
}

/** Throws when one of the rules cannot be enforced as written (egressRuleError). */
export function checkEgressRules(rules: readonly EgressRule[], what = 'egress rule'): void {
  rules.forEach((rule, i) => {
    const error = egressRuleError(rule);
    if (error) throw new Error(`${what} ${i}: ${error}`);
  });
}

const V4_FIRST = parseIp('0.0.0.0')!;
const V4_LAST = parseIp('255.255.255.255')!;

/** The IPv4 part of an address range (as dotted addresses), or undefined when it has none. */
export function ipv4Part(network: { start: string; end: string }): { start: string; end: string } | undefined {
  let start: IpBytes | undefined = parseIp(network.start);
  let end: IpBytes | undefined = parseIp(network.end);
  if (!start || !end) return undefined;
  if (compareIp(start, V4_FIRST) < 0) start = V4_FIRST;
  if (compareIp(end, V4_LAST) > 0) end = V4_LAST;
  if (compareIp(start, end) > 0 || !isIPv4(start) || !isIPv4(end)) return undefined;
  return { start: formatIp(start), end: formatIp(end) };
}

/**
 * The iptables matches (arguments, without chain and target) for an IPv4 packet that `rule` allows; a packet
 * is allowed when it matches one of them. Empty when the rule allows no IPv4 traffic.
 */
export function ruleMatches(rule: EgressRule): string[][] {
  if (rule.protocol === 'icmpv6') return [];
  const given = rule.networks ?? [];
  const networks = given.flatMap((n) => {
    const v4 = ipv4Part(n);
    return v4 ? [v4] : [];
  });
  if (given.length > 0 && networks.length === 0) return []; // only IPv6 destinations: nothing, not "anywhere"
  const destinations: string[][] =
    networks.length === 0
      ? [[]]
      : networks.map((n) =>
          n.start === n.end ? ['-d', `${n.start}/32`] : ['-m', 'iprange', '--dst-range', `${n.start}-${n.end}`],
        );
  const out: string[][] = [];
  for (const dst of destinations) {
    switch (rule.protocol) {
      case 'tcp':
      case 'udp': {
        const groups = portGroups(rule.ports ?? []);
        if (groups.length === 0) out.push(['-p', rule.protocol, ...dst]);
        for (const g of groups) out.push(['-p', rule.protocol, ...dst, '-m', 'multiport', '--dports', g]);
        break;
      }
      case 'icmp': {
        const type = rule.icmp?.type ?? ICMP_ANY;
        const code = rule.icmp?.code ?? ICMP_ANY;
        const icmp =
          type === ICMP_ANY ? [] : ['-m', 'icmp', '--icmp-type', code === ICMP_ANY ? `${type}` : `${type}/${code}`];
        out.push(['-p', 'icmp', ...dst, ...icmp]);
        break;
      }
      case 'all':
        out.push([...dst]);
        break;
    }
  }
  return out;
}

/** multiport --dports lists of at most 15 slots (a range takes two), e.g. '80,443,8000:8080'. */
function portGroups(ports: readonly { start: number; end: number }[]): string[] {
  const groups: string[] = [];
  let current: string[] = [];
  let slots = 0;
  for (const p of ports) {
    const size = p.start === p.end ? 1 : 2;
    if (slots + size > 15) {
      groups.push(current.join(','));
      current = [];
      slots = 0;
    }
    current.push(p.start === p.end ? `${p.start}` : `${p.start}:${p.end}`);
    slots += size;
  }
  if (current.length > 0) groups.push(current.join(','));
  return groups;
}
