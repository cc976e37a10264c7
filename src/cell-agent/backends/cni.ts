// Container networking for the runc backend with the reference CNI plugins (Debian's
// containernetworking-plugins, in /usr/lib/cni), invoked by hand as a CNI runtime would:
//
// * a named network namespace per container (`ip netns add <id>`, /var/run/netns/<id>) that runc joins;
// * `loopback` (lo up), then `bridge` (isGateway and the container's default route, ipMasq, host-local IPAM
//   with its own dataDir) for eth0;
// * `portmap` for the port mappings (DNAT from host ports, also from 127.0.0.1). A mapping added after
//   creation re-runs portmap: DEL with the old mappings, ADD with all of them.
// * egress: before the namespace gets an interface, IPv6 is turned off in it (containers are IPv4 only); once
//   the bridge plugin has given it an address, and before any process of the container can run, the
//   container's egress rules (its own plus the defaults) are installed on the host (firewall.ts).
// Teardown removes the egress rules (while the address is still allocated), runs DEL in reverse order and deletes
// the namespace; the bridge (and its egress chains) stays for the next container.
// Note: the bridge plugin enables net.ipv4.ip_forward on the host (needed for ipMasq).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { checkEgressRules } from './egress.ts';
import { EgressFirewall } from './firewall.ts';
import type { EgressRule, PortMapping } from './types.ts';

export interface CniOptions {
  /** Where the plugin binaries are. Default /usr/lib/cni. */
  pluginDir?: string;
  /** CNI network name (keys host-local's allocations and portmap's chains). Default 'diego'. */
  networkName?: string;
  /** Linux bridge name (at most 15 characters). Default 'diego0'. */
  bridge?: string;
  /** Subnet for container addresses. Default 10.254.0.0/22. */
  subnet?: string;
  /** host-local IPAM state. */
  ipamDataDir: string;
  /**
   * Egress rules every container gets besides its own (the cell operator's platform-wide defaults, as Diego's
   * running/staging security groups are for Cloud Controller). Default: none, so a container without rules
   * sends nothing but replies.
   */
  defaultEgress?: EgressRule[];
  /**
   * Resolvers (IPv4) every container may query on udp and tcp port 53, on the cell (e.g. the bridge gateway)
   * or elsewhere. Default: none (DNS then needs an egress rule like any other traffic).
   */
  dnsServers?: string[];
}

/** What setUp needs to enforce a container's egress rules. */
export interface ContainerEgress {
  /** The container's handle: comments on its rules and the prefix of their LOG lines. */
  handle: string;
  /** Its own rules (the defaults are added). */
  rules?: readonly EgressRule[];
}

/** What the bridge plugin returned (a CNI result), kept in the bundle to tear down after an agent restart. */
export interface CniResult {
  ips?: { address: string; gateway?: string }[];
  [key: string]: unknown;
}

const CNI_VERSION = '1.0.0';

export class CniNetwork {
  readonly pluginDir: string;
  readonly networkName: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly ipamDataDir: string;
  /** The host iptables rules that enforce egress (firewall.ts). */
  readonly firewall: EgressFirewall;

  constructor(opts: CniOptions) {
    this.pluginDir = opts.pluginDir ?? '/usr/lib/cni';
    this.networkName = opts.networkName ?? 'diego';
    this.bridge = opts.bridge ?? 'diego0';
    this.subnet = opts.subnet ?? '10.254.0.0/22';
    this.ipamDataDir = opts.ipamDataDir;
    this.firewall = new EgressFirewall({
      bridge: this.bridge,
      defaultEgress: opts.defaultEgress,
      dnsServers: opts.dnsServers,
    });
  }

  netnsPath(id: string): string {
    return `/var/run/netns/${id}`;
  }

  /**
   * Creates the namespace, wires it up and installs the container's egress rules (default: only the
   * defaults); returns the bridge result (with the container's address). Rejects invalid rules first.
   */
  async setUp(id: string, ports: PortMapping[], egress: ContainerEgress = { handle: id }): Promise<CniResult> {
    checkEgressRules(egress.rules ?? []);
    await run('ip', ['netns', 'add', id]);
    try {
      await this.#disableIPv6(id);
      await this.#plugin('ADD', id, 'lo', this.#loopbackConf());
      const result = JSON.parse(await this.#plugin('ADD', id, 'eth0', this.#bridgeConf())) as CniResult;
      const ip = CniNetwork.address(result);
      if (!ip) throw new Error(`the bridge plugin gave container ${id} no IPv4 address`);
      await this.firewall.install(id, egress.handle, ip, this.#hostVeth(result), egress.rules ?? []);
      if (ports.length > 0) await this.#plugin('ADD', id, 'eth0', this.#portmapConf(ports, result));
      return result;
    } catch (err) {
      await this.tearDown(id, ports, undefined).catch(() => {});
      throw err;
    }
  }

  /** Replaces the port mappings of a container. */
  async setPorts(id: string, old: PortMapping[], ports: PortMapping[], result: CniResult): Promise<void> {
    if (old.length > 0) await this.#plugin('DEL', id, 'eth0', this.#portmapConf(old, result));
    await this.#plugin('ADD', id, 'eth0', this.#portmapConf(ports, result));
  }

  /**
   * Removes the egress rules, runs DEL in reverse order, then deletes the namespace. Tolerates parts that are
   * gone already.
   */
  async tearDown(id: string, ports: PortMapping[], result: CniResult | undefined): Promise<void> {
    const errors: string[] = [];
    const attempt = (p: Promise<unknown>) => p.catch((err: unknown) => errors.push((err as Error).message));
    await attempt(this.firewall.remove(id));
    if (ports.length > 0) await attempt(this.#plugin('DEL', id, 'eth0', this.#portmapConf(ports, result)));
    await attempt(this.#plugin('DEL', id, 'eth0', this.#bridgeConf()));
    await attempt(this.#plugin('DEL', id, 'lo', this.#loopbackConf()));
    await run('ip', ['netns', 'delete', id]).catch((err: unknown) => {
      if (!/No such file/.test((err as Error).message)) errors.push((err as Error).message);
    });
    if (errors.length > 0) throw new Error(`CNI teardown of ${id}: ${errors.join('; ')}`);
  }

  /** Removes the egress rules of container `id` (for a container whose namespace is gone already). */
  removeEgress(id: string): Promise<void> {
    return this.firewall.remove(id);
  }

  /** Containers get no IPv6: a link-local address would reach the bridge's (the cell's) without iptables. */
  async #disableIPv6(id: string): Promise<void> {
    if (!existsSync('/proc/sys/net/ipv6')) return;
    const script = 'for f in all default; do echo 1 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done';
    await run('ip', ['netns', 'exec', id, 'sh', '-c', script]);
  }

  /** The host side of the container's veth (the bridge result's interface outside any sandbox). */
  #hostVeth(result: CniResult): string | undefined {
    const interfaces = (result.interfaces ?? []) as { name?: string; sandbox?: string }[];
    return interfaces.find((i) => i.name && !i.sandbox && i.name !== this.bridge)?.name;
  }

  /** The container's IPv4 address from a bridge result. */
  static address(result: CniResult | undefined): string | undefined {
    return result?.ips?.[0]?.address.split('/')[0];
  }

  #loopbackConf(): object {
    return { cniVersion: CNI_VERSION, name: this.networkName, type: 'loopback' };
  }

  #bridgeConf(): object {
    return {
      cniVersion: CNI_VERSION,
      name: this.networkName,
      type: 'bridge',
      bridge: this.bridge,
      isGateway: true,
      // The gateway is the container's default route, so egress rules can allow destinations off the bridge.
      isDefaultGateway: true,
      ipMasq: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: this.subnet }]], dataDir: this.ipamDataDir },
    };
  }

  #portmapConf(ports: PortMapping[], prevResult: CniResult | undefined): object {
    return {
      cniVersion: CNI_VERSION,
      name: this.networkName,
      type: 'portmap',
      capabilities: { portMappings: true },
      snat: true,
      runtimeConfig: {
        portMappings: ports.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: 'tcp' })),
      },
      ...(prevResult ? { prevResult } : {}),
    };
  }

  #plugin(command: 'ADD' | 'DEL', id: string, ifname: string, conf: object): Promise<string> {
    const type = (conf as { type: string }).type;
    return run(`${this.pluginDir}/${type}`, [], JSON.stringify(conf), {
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: this.netnsPath(id),
      CNI_IFNAME: ifname,
      CNI_PATH: this.pluginDir,
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    });
  }
}

function run(file: string, args: string[], input?: string, env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    child.once('error', reject);
    child.once('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) resolve(stdout);
      // CNI plugins report errors as JSON on stdout ({"code":..,"msg":..}).
      else {
        const detail = (Buffer.concat(err).toString('utf8') + stdout).trim();
        reject(new Error(`${file} ${env?.CNI_COMMAND ?? args.join(' ')} failed (exit ${code}): ${detail}`));
      }
    });
  });
}
