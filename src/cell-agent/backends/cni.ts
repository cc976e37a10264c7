// Container networking for the runc backend with the reference CNI plugins (Debian's
// containernetworking-plugins, in /usr/lib/cni), invoked by hand as a CNI runtime would:
//
// * a named network namespace per container (`ip netns add <id>`, /var/run/netns/<id>) that runc joins;
// * `loopback` (lo up), then `bridge` (isGateway, ipMasq, host-local IPAM with its own dataDir) for eth0;
// * `portmap` for the port mappings (DNAT from host ports, also from 127.0.0.1). A mapping added after
//   creation re-runs portmap: DEL with the old mappings, ADD with all of them.
// Teardown runs DEL in reverse order and deletes the namespace; the bridge stays for the next container.
// Note: the bridge plugin enables net.ipv4.ip_forward on the host (needed for ipMasq).
import { spawn } from 'node:child_process';
import type { PortMapping } from './types.ts';

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

  constructor(opts: CniOptions) {
    this.pluginDir = opts.pluginDir ?? '/usr/lib/cni';
    this.networkName = opts.networkName ?? 'diego';
    this.bridge = opts.bridge ?? 'diego0';
    this.subnet = opts.subnet ?? '10.254.0.0/22';
    this.ipamDataDir = opts.ipamDataDir;
  }

  netnsPath(id: string): string {
    return `/var/run/netns/${id}`;
  }

  /** Creates the namespace and wires it up; returns the bridge result (with the container's address). */
  async setUp(id: string, ports: PortMapping[]): Promise<CniResult> {
    await run('ip', ['netns', 'add', id]);
    try {
      await this.#plugin('ADD', id, 'lo', this.#loopbackConf());
      const result = JSON.parse(await this.#plugin('ADD', id, 'eth0', this.#bridgeConf())) as CniResult;
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

  /** DEL in reverse order, then deletes the namespace. Tolerates parts that are gone already. */
  async tearDown(id: string, ports: PortMapping[], result: CniResult | undefined): Promise<void> {
    const errors: string[] = [];
    const attempt = (p: Promise<unknown>) => p.catch((err: unknown) => errors.push((err as Error).message));
    if (ports.length > 0) await attempt(this.#plugin('DEL', id, 'eth0', this.#portmapConf(ports, result)));
    await attempt(this.#plugin('DEL', id, 'eth0', this.#bridgeConf()));
    await attempt(this.#plugin('DEL', id, 'lo', this.#loopbackConf()));
    await run('ip', ['netns', 'delete', id]).catch((err: unknown) => {
      if (!/No such file/.test((err as Error).message)) errors.push((err as Error).message);
    });
    if (errors.length > 0) throw new Error(`CNI teardown of ${id}: ${errors.join('; ')}`);
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
