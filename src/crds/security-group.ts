// Diego's rules for an application security group rule (bbs models/security_groups.go, SecurityGroupRule.Validate)
// and the address parsing they rest on, which follows Go's net.ParseIP and net.ParseCIDR: IPv4 in dotted decimal
// without leading zeros, IPv6 with '::' and an optional trailing dotted IPv4, no zone; a CIDR's prefix length is
// decimal, at most 32 for an IPv4 address and 128 for an IPv6 one. Addresses are 16 bytes as in Go, IPv4 ones in
// their IPv4-mapped form (::ffff:a.b.c.d), so ranges compare byte by byte as Diego compares them. Pure: used by
// the CRD schema (webhook, BBS facade) and by the cell agent's conversion to backend egress rules.

/** An address as 16 bytes (IPv4 addresses IPv4-mapped), like Go's net.IP from ParseIP. */
export type IpBytes = Uint8Array;

/** Go's net.ParseIP: the address's 16 bytes, or undefined when it is not an IPv4 or IPv6 address. */
export function parseIp(s: string): IpBytes | undefined {
  for (const ch of s) {
    if (ch === '.') return v4Bytes(parseIPv4(s));
    if (ch === ':') return parseIPv6(s);
  }
  return undefined;
}

/** True when the 16 bytes are an IPv4(-mapped) address. */
export function isIPv4(ip: IpBytes): boolean {
  return ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff;
}

/** Text of an address: dotted decimal for IPv4(-mapped) ones, else full hex groups (fine for iptables). */
export function formatIp(ip: IpBytes): string {
  if (isIPv4(ip)) return [...ip.subarray(12)].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i]! << 8) | ip[i + 1]!).toString(16));
  return groups.join(':');
}

/** Byte-wise order of two addresses, as Diego checks a range's start against its end. */
export function compareIp(a: IpBytes, b: IpBytes): number {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

/** Go's net.ParseCIDR: the network's first and last address, or the error message Go gives. */
export function parseCidr(s: string): { start: IpBytes; end: IpBytes } | { error: string } {
  const invalid = { error: `invalid CIDR address: ${s}` };
  const slash = s.indexOf('/');
  if (slash < 0) return invalid;
  const text = s.slice(0, slash);
  const mask = s.slice(slash + 1);
  // The address is parsed as netip.ParseAddr does: a plain IPv4 address has 32 bits, anything else 128.
  const ip = parseIp(text);
  if (!ip) return invalid;
  const bits = text.includes(':') ? 128 : 32;
  if (!/^[0-9]+$/.test(mask)) return invalid;
  const prefix = Number(mask);
  if (prefix > bits) return invalid;
  const fixed = prefix + (128 - bits); // leading bits of the 16 bytes that name the network
  const start = new Uint8Array(ip);
  const end = new Uint8Array(ip);
  for (let bit = fixed; bit < 128; bit++) {
    const byte = bit >> 3;
    const m = 0x80 >> (bit & 7);
    start[byte] = start[byte]! & ~m;
    end[byte] = end[byte]! | m;
  }
  return { start, end };
}

/** One destination of a rule: an IP, a range 'a-b' or a CIDR, as Diego tells them apart (first '-' or '/'). */
export function parseDestination(d: string): { start: IpBytes; end: IpBytes } | { error: string } {
  const n = d.search(/[-/]/);
  if (n < 0) {
    const ip = parseIp(d);
    return ip ? { start: ip, end: ip } : { error: 'Invalid IP' };
  }
  if (d[n] === '/') return parseCidr(d);
  const start = parseIp(d.slice(0, n));
  const end = parseIp(d.slice(n + 1));
  if (!start || !end) return { error: 'Invalid IP' };
  if (compareIp(start, end) > 0) return { error: 'Invalid IP (the range starts after its end)' };
  return { start, end };
}

/** Diego splits each destination at commas ('10.0.0.1,10.0.0.2'). */
export function splitDestinations(destinations: readonly string[]): string[] {
  return destinations.flatMap((d) => d.split(','));
}

/** The fields of a security group rule that Diego's Validate looks at (the CRD's camelCase names). */
export interface SecurityGroupRuleFields {
  protocol: string;
  destinations?: readonly string[];
  ports?: readonly number[];
  portRange?: { start: number; end: number };
  icmpInfo?: object;
}

export interface RuleIssue {
  /** The field, relative to the rule (e.g. ['destinations', 2] or ['portRange']). */
  path: (string | number)[];
  message: string;
}

/**
 * Diego's SecurityGroupRule.Validate with our field names: protocol tcp/udp need ports or portRange (one, not
 * both; a range with 1 <= start <= end; at least one port) and no icmpInfo; icmp and icmpv6 need icmpInfo and
 * take no ports; all takes none of them; every destination (commas split them) must be an IP, a range with
 * start <= end, or a CIDR. Empty when the rule is valid.
 */
export function securityGroupRuleIssues(rule: SecurityGroupRuleFields): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const invalid = (field: string) => issues.push({ path: [field], message: `Invalid field: ${field}` });
  const { protocol } = rule;
  if (protocol === 'tcp' || protocol === 'udp') {
    issues.push(...portIssues(rule));
    if (rule.icmpInfo !== undefined) {
      issues.push({ path: ['icmpInfo'], message: `Invalid field: icmpInfo (only icmp and icmpv6 rules have it)` });
    }
  } else if (protocol === 'icmp' || protocol === 'icmpv6') {
    if (rule.portRange !== undefined) invalid('portRange');
    if (rule.ports !== undefined) invalid('ports');
    if (rule.icmpInfo === undefined) {
      issues.push({ path: ['icmpInfo'], message: `Missing required field: icmpInfo (${protocol} rules need it)` });
    }
  } else if (protocol === 'all') {
    if (rule.portRange !== undefined) invalid('portRange');
    if (rule.ports !== undefined) invalid('ports');
    if (rule.icmpInfo !== undefined) invalid('icmpInfo');
  } else {
    invalid('protocol');
  }
  const destinations = rule.destinations ?? [];
  if (destinations.length === 0) {
    issues.push({
      path: ['destinations'],
      message: 'Invalid field: destinations [ Must have at least 1 destination ]',
    });
  }
  destinations.forEach((d, i) => {
    const errors = d.split(',').flatMap((one) => {
      const parsed = parseDestination(one);
      return 'error' in parsed ? [`'${one}': ${parsed.error}`] : [];
    });
    if (errors.length > 0) {
      issues.push({
        path: ['destinations', i],
        message: `Invalid field: destinations [ ${errors.join(', ')} ] (a destination is an IP, a range 'a-b' with a <= b, or a CIDR)`,
      });
    }
  });
  return issues;
}

function portIssues(rule: SecurityGroupRuleFields): RuleIssue[] {
  if (rule.portRange === undefined && rule.ports === undefined) {
    return [{ path: ['ports'], message: 'Missing required field: ports or portRange' }];
  }
  if (rule.portRange !== undefined && rule.ports !== undefined) {
    return [{ path: ['portRange'], message: 'Invalid: ports and portRange provided' }];
  }
  const issues: RuleIssue[] = [];
  const range = rule.portRange;
  if (range && (range.start < 1 || range.end < 1 || range.start > range.end)) {
    issues.push({
      path: ['portRange'],
      message: `Invalid field: portRange (start ${range.start} must be at least 1 and at most end ${range.end})`,
    });
  }
  const ports = rule.ports;
  if (ports && (ports.length === 0 || ports.some((p) => p < 1))) {
    issues.push({ path: ['ports'], message: 'Invalid field: ports' });
  }
  return issues;
}

function parseIPv4(s: string): number[] | undefined {
  const fields = s.split('.');
  if (fields.length !== 4) return undefined;
  const out: number[] = [];
  for (const f of fields) {
    if (!/^[0-9]{1,3}$/.test(f) || (f.length > 1 && f[0] === '0')) return undefined;
    const n = Number(f);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

function v4Bytes(octets: number[] | undefined): IpBytes | undefined {
  if (!octets) return undefined;
  const ip = new Uint8Array(16);
  ip[10] = 0xff;
  ip[11] = 0xff;
  ip.set(octets, 12);
  return ip;
}

function parseIPv6(s: string): IpBytes | undefined {
  if (s.includes('%')) return undefined; // net.ParseIP takes no zone
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string, last: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const fields = part.split(':');
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      if (last && i === fields.length - 1 && f.includes('.')) {
        const v4 = parseIPv4(f);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(f)) return undefined;
        out.push(parseInt(f, 16));
      }
    }
    return out;
  };
  let words: number[];
  if (halves.length === 1) {
    const all = groups(s, true);
    if (!all || all.length !== 8) return undefined;
    words = all;
  } else {
    const head = groups(halves[0]!, false);
    const tail = groups(halves[1]!, true);
    // '::' stands for at least one group of zeros.
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const ip = new Uint8Array(16);
  words.forEach((w, i) => {
    ip[2 * i] = w >> 8;
    ip[2 * i + 1] = w & 0xff;
  });
  return ip;
}
