// A real one-node Kubernetes cluster from real parts, for the cluster suite (test/cluster) and local trials: the
// local control plane (src/lib/controlplane, in node mode), kube-scheduler, and a node made of containerd 2.x (CRI,
// runc, CNI bridge + host-local + portmap + loopback), a kubelet and kube-proxy (iptables mode).
//
// The node lives in a network namespace of its own, joined to this host by a veth pair: the API server binds the
// host end (10.250.K.1), the node's address is the other end (10.250.K.2), its pods get 10.244.K.0/24 on a bridge
// inside the namespace. The host routes the pod and Service ranges to the node, so the API server reaches webhooks
// and kubelets, and tests reach pods and ClusterIPs, while the node's iptables rules, bridge and ports stay inside
// the namespace. The node's processes share this host's mount namespace (nsenter --net only), so the kubelet's and
// containerd's mounts are the same ones; stop() tears down pods, mounts, cgroups, the namespace and the routes.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { issueCert, writeCertFiles, type CertKeyPair } from '../certs.ts';
import { type ControlPlane, startControlPlane } from '../controlplane/index.ts';
import { adminKubeconfig } from '../controlplane/kubeconfig.ts';
import { kubeConfigFromString, rawRequest } from '../kube.ts';
import { type ManagedProcess, startProcess, stopProcess } from '../controlplane/process.ts';
import { repoRoot } from '../controlplane/binaries.ts';
import { trackDir, releaseDir, sweepStaleDirs } from '../controlplane/cleanup.ts';

const run = promisify(execFile);

export interface ClusterOptions {
  /** Directory with kubelet, kube-proxy, containerd, containerd-shim-runc-v2, ctr (hack/build-node.sh). */
  nodeBinDir: string;
  /** kube-scheduler (hack/build-kube-scheduler.sh). */
  schedulerBin: string;
  /** The sandbox ("pause") image as an OCI archive and its name (hack/oci-archive.ts). */
  pauseImage: { archive: string; name: string };
  logger?: Logger;
  /** Default 'diego-node'. */
  nodeName?: string;
  /** The OCI runtime containerd runs (default /usr/sbin/runc, Debian's). */
  runc?: string;
  /** Aborting while starting stops what was started (e.g. Ctrl-C): startCluster then rejects. */
  signal?: AbortSignal;
}

export interface Cluster {
  cp: ControlPlane;
  nodeName: string;
  /** The node's address (the namespace end of the veth pair). */
  nodeIp: string;
  /** The pods' range on the node. */
  podCidr: string;
  /** The node's network namespace, as `ip netns` names it. */
  netns: string;
  /** Working directory: containerd's root and state, the kubelet's root, logs. A shared mount: hostPath volumes
   * with Bidirectional propagation go under it. */
  dir: string;
  /** containerd's socket (for ctr --address). */
  containerdSocket: string;
  /** Runs ctr against the node's containerd, in the CRI's "k8s.io" namespace. */
  ctr(args: string[]): Promise<string>;
  /** Imports an OCI archive into the node's image store, where the kubelet finds it (imagePullPolicy: Never). */
  importImage(archive: string): Promise<void>;
  stop(): Promise<void>;
}

const SERVICE_CIDR = '10.0.0.0/24';

/**
 * Runs hack/<script> (a build that caches its result: build-node.sh, build-kube-scheduler.sh, build-image.sh,
 * build-helm.sh), its progress on stderr, and answers the last line it printed (a path, or "archive name").
 */
export function hackBuild(script: string): string {
  return execFileSync(join(repoRoot(), 'hack', script), { stdio: ['ignore', 'pipe', 'inherit'] })
    .toString()
    .trim()
    .split('\n')
    .pop()!;
}

/** Where built images are kept (as the build scripts' caches): $DIEGO_CACHE_DIR or ~/.cache/diego-operator, /images. */
export function imageCacheDir(): string {
  const dir = join(
    process.env.DIEGO_CACHE_DIR ??
      join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache'), 'diego-operator'),
    'images',
  );
  mkdirSync(dir, { recursive: true });
  return dir;
} // the control plane's --service-cluster-ip-range

/** Starts the control plane, kube-scheduler and the node; resolves once the node is Ready. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const log = (opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ component: 'node' });
  const nodeName = opts.nodeName ?? 'diego-node';
  await sweepStaleNodes(log);
  const k = await freeSubnet();
  const id = randomBytes(3).toString('hex');
  const netns = `diego-node-${id}`;
  const hostIf = `dnh${id}`;
  const hostIp = `10.250.${k}.1`;
  const nodeIp = `10.250.${k}.2`;
  const podCidr = `10.244.${k}.0/24`;
  const dir = await mkdtemp(join(tmpdir(), 'diego-node-'));
  trackDir(dir);
  await writeFile(join(dir, 'netns'), netns);
  // Shared mount propagation under the node's directory, as systemd gives a node's whole tree: pods' hostPath
  // volumes with mountPropagation Bidirectional (the cell agent's state) must live under a shared mount.
  await sh('mount', ['--bind', dir, dir]);
  await sh('mount', ['--make-rshared', dir]);
  const procs: ManagedProcess[] = [];
  let cp: ControlPlane | undefined;
  const cgroupRoot = `/${netns}`;
  const env = { ...process.env, PATH: `${opts.nodeBinDir}${delimiter}${process.env.PATH ?? ''}` };
  const inNode = (bin: string, args: string[]) =>
    ['nsenter', [`--net=/run/netns/${netns}`, '--', bin, ...args]] as const;
  const containerdSocket = join(dir, 'containerd.sock');
  const ctr = async (args: string[]) =>
    (
      await run(join(opts.nodeBinDir, 'ctr'), ['--address', containerdSocket, '-n', 'k8s.io', ...args], {
        maxBuffer: 64 * 2 ** 20,
      })
    ).stdout;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // The kubelet first (it would restart what we kill), then the pods' processes, then the rest.
      for (const p of [...procs].reverse().filter((p) => p.name === 'kubelet')) await stopProcess(p, 10_000);
      await killCgroup(cgroupRoot);
      for (const p of [...procs].reverse().filter((p) => p.name !== 'kubelet')) await stopProcess(p, 10_000);
      killShims(containerdSocket);
      await cp?.stop();
      await teardownNode(dir, netns, cgroupRoot, log);
      if (await releaseDir(dir)) log.info({ dir }, 'DIEGO_KEEP_CONTROL_PLANE=1: kept the node directory');
    })());

  try {
    // The network: a namespace for the node, a veth pair to it, routes to its pods and Services.
    await sh('ip', ['netns', 'add', netns]);
    await sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await sh('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostIf]);
    await sh('ip', ['link', 'set', hostIf, 'up']);
    const ns = (args: string[]) => sh('ip', ['netns', 'exec', netns, ...args]);
    await ns(['ip', 'link', 'set', 'lo', 'up']);
    await ns(['ip', 'addr', 'add', `${nodeIp}/30`, 'dev', 'eth0']);
    await ns(['ip', 'link', 'set', 'eth0', 'up']);
    await ns(['ip', 'route', 'add', 'default', 'via', hostIp]);
    await ns(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await sh('modprobe', ['br_netfilter']).catch(() => undefined); // built in, or already loaded
    await ns(['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1']);
    await sh('ip', ['route', 'add', podCidr, 'via', nodeIp]);
    await sh('ip', ['route', 'replace', SERVICE_CIDR, 'via', nodeIp]);

    cp = await startControlPlane({ logger: opts.logger, nodeAddress: hostIp });
    const ca = {
      certPem: await readFile(join(cp.dir, 'ca.crt'), 'utf8'),
      keyPem: await readFile(join(cp.dir, 'ca.key'), 'utf8'),
    };
    const kubeconfigFor = async (name: string, user: CertKeyPair) => {
      const path = join(dir, `${name}.kubeconfig`);
      await writeFile(path, adminKubeconfig(cp!.server, ca.certPem, user), { mode: 0o600 });
      return path;
    };
    const [kubeletCert, proxyCert, schedulerCert] = await Promise.all([
      issueCert(ca, {
        commonName: `system:node:${nodeName}`,
        organizations: ['system:nodes'],
        ipAddresses: [nodeIp],
        dnsNames: [nodeName],
        usage: 'both',
      }),
      issueCert(ca, { commonName: 'system:kube-proxy', usage: 'client' }),
      issueCert(ca, { commonName: 'system:kube-scheduler', usage: 'client' }),
    ]);
    const kubeletFiles = await writeCertFiles(dir, 'kubelet', kubeletCert);

    // kube-scheduler, on the host with the control plane.
    const schedulerKc = await kubeconfigFor('scheduler', schedulerCert);
    procs.push(
      await startProcess(
        'kube-scheduler',
        opts.schedulerBin,
        [
          `--kubeconfig=${schedulerKc}`,
          `--authentication-kubeconfig=${schedulerKc}`,
          `--authorization-kubeconfig=${schedulerKc}`,
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
          '--secure-port=0',
        ],
        join(dir, 'kube-scheduler.log'),
      ),
    );

    // containerd with the CRI, in the node's namespace.
    await mkdir(join(dir, 'cni'), { recursive: true });
    await writeFile(join(dir, 'cni', '10-diego-node.conflist'), cniConfig(podCidr, dir));
    const runc = opts.runc ?? (await runcFor(dir, log));
    await writeFile(join(dir, 'containerd.toml'), containerdConfig(dir, opts.pauseImage.name, runc));
    const [cmd, args] = inNode(join(opts.nodeBinDir, 'containerd'), ['--config', join(dir, 'containerd.toml')]);
    procs.push(await startProcess('containerd', cmd, [...args], join(dir, 'containerd.log'), { env }));
    await until(
      'containerd to answer',
      60_000,
      async () => {
        await run(join(opts.nodeBinDir, 'ctr'), ['--address', containerdSocket, 'version']);
      },
      opts.signal,
    );
    await ctr(['images', 'import', '--snapshotter', 'overlayfs', opts.pauseImage.archive]);

    // The kubelet: cgroup v1 (failCgroupV1: false), cgroupfs, under a cgroup root of its own.
    await makeCgroupRoot(cgroupRoot);
    const kubeletKc = await kubeconfigFor('kubelet', kubeletCert);
    await writeFile(
      join(dir, 'kubelet.yaml'),
      kubeletConfig({ dir, nodeIp, podCidr, cgroupRoot, caFile: join(cp.dir, 'ca.crt'), cert: kubeletFiles }),
    );
    const [kcmd, kargs] = inNode(join(opts.nodeBinDir, 'kubelet'), [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${kubeletKc}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${nodeIp}`,
      '--v=2',
    ]);
    procs.push(await startProcess('kubelet', kcmd, [...kargs], join(dir, 'kubelet.log'), { env }));

    // kube-proxy: iptables mode, inside the namespace; it leaves the host's conntrack table size alone.
    const proxyKc = await kubeconfigFor('kube-proxy', proxyCert);
    await writeFile(join(dir, 'kube-proxy.yaml'), kubeProxyConfig(proxyKc, nodeName, podCidr));
    const [pcmd, pargs] = inNode(join(opts.nodeBinDir, 'kube-proxy'), [`--config=${join(dir, 'kube-proxy.yaml')}`]);
    procs.push(await startProcess('kube-proxy', pcmd, [...pargs], join(dir, 'kube-proxy.log'), { env }));

    // Ready: the node says so.
    const kc = kubeConfigFromString(cp.kubeconfig);
    await until(
      `node ${nodeName} to be Ready (see ${join(dir, 'kubelet.log')})`,
      180_000,
      async () => {
        const exited = procs.find((p) => p.exitInfo);
        if (exited)
          throw new Fatal(`${exited.name} exited (${JSON.stringify(exited.exitInfo)}); see ${exited.logPath}`);
        const node = await rawRequest<{ status?: { conditions?: { type: string; status: string }[] } }>(kc, {
          method: 'GET',
          path: `/api/v1/nodes/${nodeName}`,
        });
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
        if (ready?.status !== 'True') throw new Error(`node ${nodeName} not Ready yet`);
      },
      opts.signal,
    );
    log.info({ nodeName, nodeIp, podCidr, netns, dir }, 'node ready');
    return {
      cp,
      nodeName,
      nodeIp,
      podCidr,
      netns,
      dir,
      containerdSocket,
      ctr,
      importImage: async (archive) => {
        await ctr(['images', 'import', '--snapshotter', 'overlayfs', archive]);
      },
      stop,
    };
  } catch (err) {
    await stop().catch((e: unknown) => log.error({ err: e }, 'cleanup after a failed node start failed'));
    throw err;
  }
}

class Fatal extends Error {}

async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    return (await run(cmd, args)).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

async function until(what: string, timeoutMs: number, check: () => Promise<void>, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) throw new Fatal(`stopped while waiting for ${what}`);
    try {
      await check();
      return;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** A /30 for the veth pair (and a /24 for pods) that no interface on this host uses. */
async function freeSubnet(): Promise<number> {
  const used = await sh('ip', ['-o', '-4', 'addr', 'show']);
  const routes = await sh('ip', ['-4', 'route', 'show']);
  for (let tries = 0; tries < 100; tries++) {
    const k = 1 + Math.floor(Math.random() * 250);
    if (!used.includes(`10.250.${k}.`) && !routes.includes(`10.244.${k}.`)) return k;
  }
  throw new Error('no free 10.250.K.0/30 for the node: remove stale diego-node interfaces (ip -br link)');
}

function cniConfig(podCidr: string, dir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'diego-node',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: podCidr }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: join(dir, 'cni-ipam'),
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function containerdConfig(dir: string, pauseImage: string, runc: string): string {
  return `version = 3
root = ${JSON.stringify(join(dir, 'containerd', 'root'))}
state = ${JSON.stringify(join(dir, 'containerd', 'state'))}

[grpc]
  address = ${JSON.stringify(join(dir, 'containerd.sock'))}

[ttrpc]
  address = ${JSON.stringify(join(dir, 'containerd.sock.ttrpc'))}

[debug]
  address = ""

[metrics]
  address = ""

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${JSON.stringify(pauseImage)}

[plugins.'io.containerd.cri.v1.runtime']
  # Pod network namespaces under the state directory, not /var/run/netns: stop() finds every one.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = ${JSON.stringify(runc)}
        Root = ${JSON.stringify(join(dir, 'runc'))}
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = ${JSON.stringify(join(dir, 'cni'))}

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
`;
}

function kubeletConfig(o: {
  dir: string;
  nodeIp: string;
  podCidr: string;
  cgroupRoot: string;
  caFile: string;
  cert: { certPath: string; keyPath: string };
}): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // This machine has cgroup v1, which the kubelet refuses by default since 1.35.
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      cgroupRoot: o.cgroupRoot,
      containerRuntimeEndpoint: `unix://${join(o.dir, 'containerd.sock')}`,
      address: o.nodeIp,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: 10248,
      tlsCertFile: o.cert.certPath,
      tlsPrivateKeyFile: o.cert.keyPath,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: o.caFile },
      },
      authorization: { mode: 'Webhook' },
      podCIDR: o.podCidr,
      podLogsDir: join(o.dir, 'pod-logs'),
      failSwapOn: false,
      resolvConf: '/etc/resolv.conf',
      clusterDomain: 'cluster.local',
      // This machine's disk and memory are shared with everything else the tests run: no evictions.
      evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      serializeImagePulls: false,
      staticPodPath: '',
    },
    null,
    2,
  );
}

function kubeProxyConfig(kubeconfig: string, nodeName: string, podCidr: string): string {
  return JSON.stringify(
    {
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      mode: 'iptables',
      clientConnection: { kubeconfig },
      hostnameOverride: nodeName,
      clusterCIDR: podCidr,
      bindAddress: '0.0.0.0',
      healthzBindAddress: '127.0.0.1:10256',
      metricsBindAddress: '127.0.0.1:10249',
      // The conntrack table's size is the host's (not per namespace): leave it.
      conntrack: { maxPerCore: 0, min: 0 },
    },
    null,
    2,
  );
}

/**
 * Debian's runc, or, where this host's root lacks CAP_SYS_RESOURCE (as on these VMs), a wrapper that raises a
 * negative oomScoreAdj to 0 before runc sees it: the kubelet asks -998 for sandboxes and -997 for Guaranteed pods,
 * and runc fails a container whose oom_score_adj it cannot lower ("failed to update /proc/self/oom_score_adj").
 */
async function runcFor(dir: string, log: Logger): Promise<string> {
  const capEff = /CapEff:\s*([0-9a-f]+)/.exec(await readFile('/proc/self/status', 'utf8'))?.[1] ?? '0';
  const CAP_SYS_RESOURCE = 24n;
  if ((BigInt(`0x${capEff}`) >> CAP_SYS_RESOURCE) & 1n) return '/usr/sbin/runc';
  log.warn('no CAP_SYS_RESOURCE here: pods run with oom_score_adj >= 0 (negative values are raised to 0)');
  const wrapper = join(dir, 'runc-oom-clamp');
  const clamp = `sed -i -E 's/"oomScoreAdj": ?-[0-9]+/"oomScoreAdj":0/'`;
  await writeFile(
    wrapper,
    [
      '#!/bin/sh',
      '# runc, with negative oomScoreAdj raised to 0 (no CAP_SYS_RESOURCE on this host): src/lib/node/index.ts.',
      'prev=',
      'for a in "$@"; do',
      '  case "$prev" in',
      `    --bundle|-b) [ -f "$a/config.json" ] && ${clamp} "$a/config.json" ;;`,
      `    --process|-p) [ -f "$a" ] && ${clamp} "$a" ;;`,
      '  esac',
      '  case "$a" in',
      `    --bundle=*) [ -f "\${a#--bundle=}/config.json" ] && ${clamp} "\${a#--bundle=}/config.json" ;;`,
      '  esac',
      '  prev=$a',
      'done',
      'exec /usr/sbin/runc "$@"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return wrapper;
}

/** The v1 hierarchies the kubelet puts pods in. */
function hierarchies(): string[] {
  try {
    return readdirSync('/sys/fs/cgroup').filter((h) => h !== 'unified' && !h.includes(','));
  } catch {
    return [];
  }
}

async function makeCgroupRoot(root: string): Promise<void> {
  for (const h of hierarchies()) {
    const path = join('/sys/fs/cgroup', h, root);
    await mkdir(path, { recursive: true });
    if (h === 'cpuset') {
      // A new cpuset has no CPUs or memory nodes until given its parent's.
      for (const f of ['cpuset.cpus', 'cpuset.mems'])
        writeFileSync(join(path, f), readFileSync(join('/sys/fs/cgroup/cpuset', f)));
    }
  }
}

/** SIGKILLs every process under the cgroup root (all hierarchies), waiting until none is left. */
async function killCgroup(root: string): Promise<void> {
  const pids = (): number[] => {
    const out = new Set<number>();
    const walk = (path: string) => {
      try {
        for (const p of readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n')) if (p) out.add(Number(p));
        for (const e of readdirSync(path, { withFileTypes: true })) if (e.isDirectory()) walk(join(path, e.name));
      } catch {
        // gone
      }
    };
    for (const h of hierarchies()) walk(join('/sys/fs/cgroup', h, root));
    return [...out];
  };
  for (let i = 0; i < 50; i++) {
    const left = pids();
    if (left.length === 0) return;
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The runc shims of this containerd (they outlive it on purpose). */
function killShims(socket: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes('containerd-shim') && cmdline.includes(socket)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // exited
    }
  }
}

/**
 * Containers that pods made with their own runc under the node's directory (the cell agent's instances: its runc root
 * is <stateDir>/runc): deleted with their processes and cgroups, and the network namespaces they were given.
 */
async function removeRuncContainers(dir: string, log: Logger): Promise<void> {
  const roots: string[] = [];
  const walk = (path: string, depth: number) => {
    if (depth > 6) return;
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const child = join(path, e.name);
      // A runc root holds one directory per container, each with a state.json.
      let isRoot: boolean;
      try {
        isRoot = readdirSync(child, { withFileTypes: true }).some(
          (c) => c.isDirectory() && existsSync(join(child, c.name, 'state.json')),
        );
      } catch {
        continue;
      }
      // (A runc root is named runc, or sits in one: containerd's <dir>/runc/k8s.io; the agent's <stateDir>/runc.)
      if (isRoot && (e.name === 'runc' || path.endsWith('/runc'))) roots.push(child);
      else if (!['containerd', 'kubelet'].includes(e.name) || depth > 0) walk(child, depth + 1);
    }
  };
  walk(dir, 0);
  for (const root of roots) {
    for (const id of readdirSync(root)) {
      const state = join(root, id, 'state.json');
      if (!existsSync(state)) continue;
      let netnsPaths: string[] = [];
      try {
        const s = JSON.parse(readFileSync(state, 'utf8')) as {
          config?: { namespaces?: { type: string; path?: string }[] };
        };
        netnsPaths = (s.config?.namespaces ?? []).filter((n) => n.type === 'NEWNET' && n.path).map((n) => n.path!);
      } catch {
        // unreadable: the delete below still kills it
      }
      await sh('runc', ['--root', root, 'delete', '--force', id]).catch((err: unknown) =>
        log.warn({ err, id }, 'runc delete'),
      );
      for (const p of netnsPaths.filter((p) => /^\/(var\/)?run\/netns\//.test(p)))
        await sh('ip', ['netns', 'delete', p.slice(p.lastIndexOf('/') + 1)]).catch(() => undefined);
    }
  }
}

/** Unmounts what the node left under its directory, removes its cgroups, its network namespace and routes. */
async function teardownNode(dir: string, netns: string, cgroupRoot: string, log: Logger): Promise<void> {
  await removeRuncContainers(dir, log);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await sh('umount', ['-l', m]).catch((err: unknown) => log.warn({ err, m }, 'umount'));
  for (const h of hierarchies()) await removeCgroupTree(join('/sys/fs/cgroup', h, cgroupRoot));
  // Deleting the namespace deletes the veth pair, and with it the host's routes through it.
  await sh('ip', ['netns', 'delete', netns]).catch(() => undefined);
}

async function removeCgroupTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  for (const e of readdirSync(path, { withFileTypes: true }))
    if (e.isDirectory()) await removeCgroupTree(join(path, e.name));
  await rmdir(path).catch(() => undefined); // a cgroup directory goes with rmdir, its files with it
}

/** Nodes of runs that died without stopping: their directories (owner dead), mounts, cgroups and namespaces. */
async function sweepStaleNodes(log: Logger): Promise<void> {
  const parent = tmpdir();
  for (const name of readdirSync(parent).filter((n) => n.startsWith('diego-node-'))) {
    const dir = join(parent, name);
    try {
      const owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
      if (!(owner > 0) || existsSync(`/proc/${owner}`)) continue;
      const netns = readFileSync(join(dir, 'netns'), 'utf8').trim();
      log.info({ dir, netns }, 'removing a node left by a run that died');
      killShims(join(dir, 'containerd.sock'));
      await killCgroup(`/${netns}`);
      await teardownNode(dir, netns, `/${netns}`, log);
    } catch {
      // not ours, or half made: the directory sweep below decides
    }
  }
  sweepStaleDirs(parent, 'diego-node-');
}
