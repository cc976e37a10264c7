// Egress enforcement for containers on a CNI bridge (cni.ts): iptables rules in the HOST's network namespace,
// out of reach of a container's root (it has its own network namespace and no CAP_NET_ADMIN on the host's),
// installed before any process of the container runs and removed when it is destroyed. Semantics are
// Garden's and silk's: a container sends nothing unless one of its egress rules (or the cell's defaults)
// allows it, except replies to connections made to it.
//
// Chains (filter table; <br> is the bridge name, <hash> 24 hex digits of sha256 of the container id):
//
//   INPUT   -i <br> -j DGI-<br>      (inserted first: before any ACCEPT of the host's own rules)
//   FORWARD -i <br> -j DGF-<br>      (inserted first)
//   DGI-<br>  traffic from containers to the cell itself (any host address: the bridge gateway, 127.0.0.1
//             through portmap's route_localnet, the agent's ops port):
//             replies (conntrack RELATED,ESTABLISHED in the reply direction) → ACCEPT; the DNS servers
//             (udp and tcp 53) → ACCEPT; everything else → REJECT. Egress rules never open the cell itself,
//             as with silk, whose host rules let only DNS and host services the operator names through.
//   DGF-<br>  traffic routed (or, with br_netfilter, bridged) on from containers: replies → ACCEPT; DNS
//             servers → ACCEPT; -j DGC-<br>; everything else (no container of ours has that source) → REJECT.
//   DGC-<br>  one rule per container: -s <ip>/32 [-m physdev --physdev-in <host veth>] -g DGE-<hash>
//   DGE-<hash> the container's rules then the defaults, each `<match> -j ACCEPT` (preceded, with log, by
//             `<match> -m conntrack --ctstate NEW -j LOG --log-prefix "<handle, 28 chars> "`), then REJECT.
//
// Only replies are accepted on conntrack state (`--ctdir REPLY`): packets of connections the container opened
// go through its rules every time, so an entry left in the conntrack table by a destroyed container cannot
// carry traffic for a new container that got the same address.
//
// Every rule is in the filter table, so it sees the destination after portmap's DNAT: a container reaching
// another container through <host address>:<host port> is allowed by a rule for <container ip>:<container port>
// (and the host port goes to INPUT only when it is not mapped). CNI's own rules are all in the nat table
// (portmap DNAT in PREROUTING/OUTPUT, masquerade in POSTROUTING), so there is no ordering between them and
// ours beyond netfilter's: nat PREROUTING → filter INPUT/FORWARD (ours) → nat POSTROUTING.
//
// Container to container on the same bridge: bridged frames cross iptables only with br_netfilter and
// net.bridge.bridge-nf-call-iptables=1 (then FORWARD -i <br> -o <br>, so the sender's rules apply, and the
// physdev match ties each container's rules to its own veth, so a container with CAP_NET_RAW cannot borrow
// another's address). Without br_netfilter, containers on one bridge reach each other freely and rules
// match on the source address alone; enforcesContainerToContainer() says which.
//
// IPv6: containers get no IPv6 address (cni.ts turns IPv6 off in their namespace), and ip6tables drops
// everything arriving from the bridge (INPUT and FORWARD, `-i <br> -j DROP`), so link-local addresses reach
// neither the cell nor, with br_netfilter, other containers.
//
// Changes go through `iptables-restore --noflush`, one transaction per container, so a container's chain and
// its jump appear and disappear together. Stale state is swept when a firewall sets its bridge up (an agent's
// first container): chains of bridges that no longer exist (a deleted test bridge) and container chains nothing
// jumps to any more (those of containers on such a bridge).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseIp, isIPv4 } from '../../crds/security-group.ts';
import { checkEgressRules, ruleMatches } from './egress.ts';
import type { EgressRule } from './types.ts';

export interface FirewallOptions {
  /** The CNI bridge the containers are on. */
  bridge: string;
  /** Rules every container gets besides its own (the cell operator's platform-wide defaults). */
  defaultEgress?: EgressRule[];
  /** The resolvers containers may query (udp and tcp port 53), IPv4 addresses; on the cell or elsewhere. */
  dnsServers?: string[];
}

/** The chain holding container `id`'s rules. */
export function containerChain(id: string): string {
  return `DGE-${createHash('sha256').update(id).digest('hex').slice(0, 24)}`;
}

/** The per-bridge chains. */
export function bridgeChains(bridge: string): { input: string; forward: string; containers: string } {
  return { input: `DGI-${bridge}`, forward: `DGF-${bridge}`, containers: `DGC-${bridge}` };
}

const REJECT = ['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'];
const REPLIES = ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '--ctdir', 'REPLY'];
const IPV6_COMMENT = 'diego egress: no IPv6 from containers';
const IPTABLES = 'iptables';
const RESTORE = 'iptables-restore';
const IP6TABLES = 'ip6tables';

/** iptables-restore quoting: words with anything but safe characters in double quotes. */
function quote(word: string): string {
  return /^[A-Za-z0-9_.:/,=+-]+$/.test(word) && !word.startsWith('"') ? word : `"${word.replace(/(["\\])/g, '\\$1')}"`;
}

function line(words: string[]): string {
  return words.map(quote).join(' ');
}

/** Rules allowing DNS to each server. */
function dnsRules(chain: string, servers: readonly string[]): string[] {
  return servers.flatMap((s) =>
    ['udp', 'tcp'].map((p) => line(['-A', chain, '-p', p, '-d', `${s}/32`, '-m', p, '--dport', '53', '-j', 'ACCEPT'])),
  );
}

/** The iptables-restore lines (filter table, without *filter/COMMIT) that (re)fill the bridge's two fixed chains. */
export function bridgeChainLines(bridge: string, dnsServers: readonly string[] = []): string[] {
  const { input, forward, containers } = bridgeChains(bridge);
  return [
    `:${input} - [0:0]`,
    line(['-A', input, ...REPLIES, '-j', 'ACCEPT']),
    ...dnsRules(input, dnsServers),
    line(['-A', input, ...REJECT]),
    `:${forward} - [0:0]`,
    line(['-A', forward, ...REPLIES, '-j', 'ACCEPT']),
    ...dnsRules(forward, dnsServers),
    line(['-A', forward, '-j', containers]),
    line(['-A', forward, ...REJECT]),
  ];
}

/** Garden's LOG prefix: the handle, cut to 28 characters, and a space. */
export function logPrefix(handle: string): string {
  return `${handle.slice(0, 28)} `;
}

/** The lines (filter table) declaring container chain `chain` and filling it: each rule's matches, then REJECT. */
export function containerChainLines(chain: string, handle: string, rules: readonly EgressRule[]): string[] {
  const comment = ['-m', 'comment', '--comment', handle];
  const out = [`:${chain} - [0:0]`];
  const seen = new Set<string>();
  for (const rule of rules) {
    for (const match of ruleMatches(rule)) {
      const key = `${rule.log ? 'log ' : ''}${match.join(' ')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (rule.log) {
        out.push(
          line([
            '-A',
            chain,
            ...match,
            '-m',
            'conntrack',
            '--ctstate',
            'NEW',
            ...comment,
            '-j',
            'LOG',
            '--log-prefix',
            logPrefix(handle),
          ]),
        );
      }
      out.push(line(['-A', chain, ...match, ...comment, '-j', 'ACCEPT']));
    }
  }
  out.push(line(['-A', chain, ...comment, ...REJECT]));
  return out;
}

/** The jump from the bridge's container chain to container `chain`, for packets from `ip` (through `veth`). */
export function jumpLine(bridge: string, chain: string, handle: string, ip: string, veth: string | undefined): string {
  const physdev = veth ? ['-m', 'physdev', '--physdev-in', veth] : [];
  return line([
    '-A',
    bridgeChains(bridge).containers,
    '-s',
    `${ip}/32`,
    ...physdev,
    '-m',
    'comment',
    '--comment',
    handle,
    '-g',
    chain,
  ]);
}

/**
 * True when packets bridged between two containers cross iptables (br_netfilter loaded and
 * net.bridge.bridge-nf-call-iptables=1): then container-to-container traffic is enforced too, and each
 * container's rules are tied to its veth.
 */
export function enforcesContainerToContainer(): boolean {
  try {
    return readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** The egress firewall of one bridge. */
export class EgressFirewall {
  readonly bridge: string;
  readonly defaultEgress: readonly EgressRule[];
  readonly dnsServers: readonly string[];
  #ready?: Promise<void>;

  constructor(opts: FirewallOptions) {
    this.bridge = opts.bridge;
    this.defaultEgress = [...(opts.defaultEgress ?? [])];
    checkEgressRules(this.defaultEgress, 'default egress rule');
    this.dnsServers = [...(opts.dnsServers ?? [])];
    for (const s of this.dnsServers) {
      const ip = parseIp(s);
      if (!ip || !isIPv4(ip)) throw new Error(`DNS server '${s}' is not an IPv4 address`);
    }
  }

  /**
   * Installs container `id`'s rules: its own, then the defaults, for packets from `ip` (and, where bridged
   * traffic crosses iptables, from its host-side veth). Replaces rules of the same id or address left behind.
   */
  async install(
    id: string,
    handle: string,
    ip: string,
    veth: string | undefined,
    rules: readonly EgressRule[],
  ): Promise<void> {
    checkEgressRules(rules);
    const chain = containerChain(id);
    const all = [...rules, ...this.defaultEgress];
    const attempt = async () => {
      await this.#ensureBridge();
      const stale = (await this.#jumps()).filter((r) => r.includes(` -g ${chain}`) || r.includes(` -s ${ip}/32 `));
      const physdev = enforcesContainerToContainer() ? veth : undefined;
      await restore([
        ...stale.map((r) => r.replace(/^-A /, '-D ')),
        ...containerChainLines(chain, handle, all),
        jumpLine(this.bridge, chain, handle, ip, physdev),
      ]);
    };
    try {
      await attempt();
    } catch (err) {
      // The bridge chains went away (swept, flushed by hand): set them up again once.
      if (!/No chain\/target\/match|does not exist|doesn't exist/i.test((err as Error).message)) throw err;
      this.#ready = undefined;
      await attempt();
    }
  }

  /** Removes container `id`'s chain and jump; nothing to remove is fine. */
  async remove(id: string): Promise<void> {
    const chain = containerChain(id);
    const jumps = (await this.#jumps()).filter((r) => r.includes(` -g ${chain}`) || r.includes(` -j ${chain}`));
    const exists = await chainExists(chain);
    if (jumps.length === 0 && !exists) return;
    await restore([...jumps.map((r) => r.replace(/^-A /, '-D ')), ...(exists ? [`-F ${chain}`, `-X ${chain}`] : [])]);
  }

  /** Creates the bridge chains and hooks when missing, refills the fixed chains, sweeps leftovers (once). */
  #ensureBridge(): Promise<void> {
    this.#ready ??= (async () => {
      await sweepStale().catch(() => {});
      const { input, forward, containers } = bridgeChains(this.bridge);
      if (!(await chainExists(containers))) {
        await iptables(['-N', containers]).catch(async (err: unknown) => {
          if (!(await chainExists(containers))) throw err; // another agent made it meanwhile: fine
        });
      }
      await restore(bridgeChainLines(this.bridge, this.dnsServers));
      await insertOnce(IPTABLES, 'INPUT', ['-i', this.bridge, '-j', input]);
      await insertOnce(IPTABLES, 'FORWARD', ['-i', this.bridge, '-j', forward]);
      if (existsSync('/proc/sys/net/ipv6')) {
        for (const hook of ['INPUT', 'FORWARD']) {
          await insertOnce(IP6TABLES, hook, [
            '-i',
            this.bridge,
            '-m',
            'comment',
            '--comment',
            IPV6_COMMENT,
            '-j',
            'DROP',
          ]);
        }
      }
    })();
    const ready = this.#ready;
    ready.catch(() => {
      if (this.#ready === ready) this.#ready = undefined;
    });
    return ready;
  }

  /** The jumps in the bridge's container chain (`-A DGC-<br> …` lines). */
  async #jumps(): Promise<string[]> {
    try {
      const listing = await iptables(['-S', bridgeChains(this.bridge).containers]);
      return listing.split('\n').filter((l) => l.startsWith('-A '));
    } catch {
      return [];
    }
  }
}

/** Inserts `rule` first in `hook` unless it is there already. */
async function insertOnce(bin: string, hook: string, rule: string[]): Promise<void> {
  const present = await command(bin, ['-w', '-C', hook, ...rule]).then(
    () => true,
    () => false,
  );
  if (!present) await command(bin, ['-w', '-I', hook, '1', ...rule]);
}

function chainExists(chain: string): Promise<boolean> {
  return iptables(['-S', chain]).then(
    () => true,
    () => false,
  );
}

/**
 * Removes everything the firewall set up for `bridge` (hooks, bridge chains, the chains of its containers):
 * for tests and for a bridge taken out of service. Leftovers of deleted bridges are also swept on their own.
 */
export async function removeBridgeFirewall(bridge: string): Promise<void> {
  await removeBridge(bridge);
  await sweepStale();
}

async function removeBridge(bridge: string): Promise<void> {
  const { input, forward, containers } = bridgeChains(bridge);
  for (const [hook, target] of [
    ['INPUT', input],
    ['FORWARD', forward],
  ] as const) {
    await deleteEvery(IPTABLES, [hook, '-i', bridge, '-j', target]);
  }
  for (const hook of ['INPUT', 'FORWARD']) {
    await deleteEvery(IP6TABLES, [hook, '-i', bridge, '-m', 'comment', '--comment', IPV6_COMMENT, '-j', 'DROP']);
  }
  for (const chain of [forward, input, containers]) {
    await iptables(['-F', chain]).catch(() => {});
    await iptables(['-X', chain]).catch(() => {});
  }
}

/** Deletes a rule as often as it is there (a hook inserted twice by two agents racing). */
async function deleteEvery(bin: string, rule: string[]): Promise<void> {
  for (;;) {
    const deleted = await command(bin, ['-w', '-D', ...rule]).then(
      () => true,
      () => false,
    );
    if (!deleted) return;
  }
}

/**
 * Removes the chains of bridges that no longer exist, and container chains nothing jumps to any more (those of
 * containers on such a bridge).
 */
async function sweepStale(): Promise<void> {
  const saved = await iptables(['-S']);
  const bridges = new Set<string>();
  for (const m of saved.matchAll(/^-N DG[IFC]-(\S+)$/gm)) bridges.add(m[1]!);
  for (const bridge of bridges) {
    if (!existsSync(`/sys/class/net/${bridge}`)) await removeBridge(bridge);
  }
  const after = await iptables(['-S']);
  const referenced = new Set([...after.matchAll(/ -[jg] (DGE-[0-9a-f]+)\b/g)].map((m) => m[1]!));
  for (const m of after.matchAll(/^-N (DGE-[0-9a-f]+)$/gm)) {
    const chain = m[1]!;
    if (!referenced.has(chain)) await restore([`-F ${chain}`, `-X ${chain}`]).catch(() => {});
  }
}

function iptables(args: string[]): Promise<string> {
  return command(IPTABLES, ['-w', ...args]);
}

/** `iptables-restore --noflush` of filter-table lines, retried when another writer got in between. */
async function restore(lines: string[]): Promise<void> {
  const input = ['*filter', ...lines, 'COMMIT', ''].join('\n');
  for (let attempt = 0; ; attempt++) {
    try {
      await command(RESTORE, ['-w', '--noflush'], input);
      return;
    } catch (err) {
      if (attempt >= 4 || !/temporarily|try again|resource busy|another app/i.test((err as Error).message)) throw err;
      await sleep(50 * (attempt + 1));
    }
  }
}

/** Runs a command (stdin `input`); resolves with stdout, rejects with its stderr. */
function command(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    if (input === undefined) {
      execFile(file, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout: string, stderr: string) => {
        if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
        else resolve(stdout);
      });
      return;
    }
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => errs.push(c));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else {
        const text = Buffer.concat(errs).toString('utf8').trim();
        reject(new Error(`${file} ${args.join(' ')} failed (exit ${code}): ${text}\ninput:\n${input.slice(0, 4000)}`));
      }
    });
  });
}
