// A throwaway Kubernetes control plane (etcd + kube-apiserver [+ kube-controller-manager])
// on loopback, for integration tests and local development, without Docker or kind.
import { generateKeyPair } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pino, type Logger } from 'pino';
import { createCA, issueCert, writeCertFiles } from '../certs.ts';
import { checkBinDir, ensureBinaries } from './binaries.ts';
import { releaseDir, sweepStaleDirs, trackDir } from './cleanup.ts';
import { startApiserver, startControllerManager, startEtcd } from './components.ts';
import { adminKubeconfig, currentServer } from './kubeconfig.ts';
import { freePort } from './ports.ts';
import { type ManagedProcess, stopProcess } from './process.ts';

export { ensureBinaries } from './binaries.ts';
export { isPortOpen } from './ports.ts';

export interface ControlPlaneProcess {
  name: string;
  pid: number;
  /** Ports the process listens on (127.0.0.1). */
  ports: number[];
  logPath: string;
}

export interface ControlPlane {
  /** Admin kubeconfig file (cluster/user/context "diego-local"; embedded certs). */
  kubeconfigPath: string;
  /** Its YAML text, e.g. for KubeConfig.loadFromString(). */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Working dir (certs, logs, etcd data); removed by stop(). '' for an external cluster. */
  dir: string;
  /** True when connected to an existing cluster via DIEGO_TEST_KUBECONFIG. */
  external: boolean;
  /** The children we started, in start order (empty for an external cluster). */
  processes: ControlPlaneProcess[];
  /** Stops everything and removes `dir`. Idempotent. */
  stop(): Promise<void>;
  /**
   * Fault injection (test/chaos): kills the named component (`etcd`, `kube-apiserver`, `kube-controller-manager`)
   * with `signal` (default SIGKILL), waits `downMs`, then starts it again with the same flags, ports and data
   * directory and resolves once it is ready. Its entry in `processes` gets the new pid. Absent for an external
   * cluster.
   */
  restart?(name: string, opts?: RestartOptions): Promise<ControlPlaneProcess>;
}

export interface RestartOptions {
  /** How the running process is stopped (default SIGKILL: a crash). SIGTERM waits for it to exit (10 s grace). */
  signal?: NodeJS.Signals;
  /** How long the component stays down before it is started again (default 0). */
  downMs?: number;
}

export interface StartOptions {
  /** Directory with etcd, kube-apiserver, kube-controller-manager. Default: ensureBinaries(). */
  binDir?: string;
  /** Also run kube-controller-manager (garbage collector + namespace controller). Default false. */
  controllerManager?: boolean;
  logger?: Logger;
  /** Parent of the per-run temp dir. Default os.tmpdir(). */
  dataDir?: string;
  /**
   * For a real node (src/lib/node): the API server binds and advertises this address instead of 127.0.0.1 (an
   * interface the caller made that the node's network reaches, e.g. the host end of a veth pair), has a client
   * certificate for kubelets, and admits ServiceAccounts; kube-controller-manager (implied) runs every controller
   * and signs ServiceAccount tokens.
   */
  nodeAddress?: string;
}

const generateKeyPairAsync = promisify(generateKeyPair);
const START_ATTEMPTS = 3;

/** Starts a fresh control plane. Throws with the failing component's log tail on error. */
export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const log = (opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ component: 'controlplane' });
  const binDir = opts.binDir ?? (await ensureBinaries());
  checkBinDir(binDir, opts.binDir ? 'the binDir option' : 'ensureBinaries()', opts.controllerManager ?? false);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binDir, opts, log);
    } catch (err) {
      // Free ports are picked before the children bind them, so another process can win
      // the race; envtest retries the whole start for the same reason.
      if (attempt >= START_ATTEMPTS || !/address already in use/i.test(String((err as Error).message))) throw err;
      log.warn({ attempt }, 'port taken while starting the control plane; retrying with new ports');
    }
  }
}

/**
 * Uses the cluster in $DIEGO_TEST_KUBECONFIG if set (stop() is then a no-op), so suites can
 * run against e.g. kind; otherwise builds/locates the binaries and starts a control plane.
 */
export async function connectOrStart(opts: StartOptions = {}): Promise<ControlPlane> {
  const external = process.env.DIEGO_TEST_KUBECONFIG;
  if (!external) return startControlPlane(opts);
  const kubeconfigPath = resolve(external);
  const kubeconfig = await readFile(kubeconfigPath, 'utf8').catch((err: unknown) => {
    throw new Error(`cannot read DIEGO_TEST_KUBECONFIG=${external}: ${(err as Error).message}`, { cause: err });
  });
  return {
    kubeconfigPath,
    kubeconfig,
    server: currentServer(kubeconfig),
    dir: '',
    external: true,
    processes: [],
    stop: async () => {},
  };
}

async function startOnce(binDir: string, opts: StartOptions, log: Logger): Promise<ControlPlane> {
  const started = performance.now();
  const parent = opts.dataDir ?? tmpdir();
  sweepStaleDirs(parent, 'diego-cp-');
  const dir = await mkdtemp(join(parent, 'diego-cp-'));
  trackDir(dir); // removed by the exit hook if we never get to stop()
  const procs: { proc: ManagedProcess; ports: number[] }[] = [];
  /** How each component is started, so restart() can start it again the same way. */
  const starters = new Map<string, () => Promise<ManagedProcess>>();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const t = performance.now();
      // Reverse order: controllers before the apiserver, the apiserver before its storage.
      for (const { proc } of [...procs].reverse()) {
        const exit = await stopProcess(proc, 10_000);
        log.debug({ name: proc.name, ...exit }, 'process stopped');
      }
      if (await releaseDir(dir)) log.info({ dir }, 'DIEGO_KEEP_CONTROL_PLANE=1: kept the control-plane directory');
      log.info({ ms: Math.round(performance.now() - t) }, 'control plane stopped');
    })());

  try {
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const address = opts.nodeAddress ?? '127.0.0.1';
    const server = `https://${address}:${apiPort}`;
    const { files, admin, kubeconfig } = await writeCredentials(dir, server, opts.nodeAddress);
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig, { mode: 0o600 });

    const step = (name: string, t: number) => log.debug({ ms: Math.round(performance.now() - t) }, `${name} ready`);
    let t = performance.now();
    starters.set('etcd', () => startEtcd(binDir, dir, { client: etcdClient, peer: etcdPeer }));
    procs.push({ proc: await starters.get('etcd')!(), ports: [etcdClient, etcdPeer] });
    step('etcd', t);
    t = performance.now();
    starters.set('kube-apiserver', () => startApiserver(binDir, dir, etcdClient, apiPort, files, admin, address));
    procs.push({ proc: await starters.get('kube-apiserver')!(), ports: [apiPort] });
    step('kube-apiserver', t);
    if (opts.controllerManager || opts.nodeAddress) {
      t = performance.now();
      const kcmPort = await freePort();
      const cluster = opts.nodeAddress ? { caCert: files.caCert, saPrivateKey: files.saPrivateKey } : undefined;
      starters.set('kube-controller-manager', () =>
        startControllerManager(binDir, dir, kcmPort, kubeconfigPath, cluster),
      );
      procs.push({ proc: await starters.get('kube-controller-manager')!(), ports: [kcmPort] });
      step('kube-controller-manager', t);
    }

    log.info({ server, dir, ms: Math.round(performance.now() - started) }, 'control plane ready');
    const processes = procs.map(({ proc, ports }) => ({
      name: proc.name,
      pid: proc.pid,
      ports,
      logPath: proc.logPath,
    }));
    const restart = async (name: string, ro: RestartOptions = {}): Promise<ControlPlaneProcess> => {
      const i = procs.findIndex(({ proc }) => proc.name === name);
      const start = starters.get(name);
      if (i < 0 || !start) throw new Error(`no control-plane component named "${name}"`);
      if (stopping) throw new Error('the control plane is stopping');
      const old = procs[i]!.proc;
      if (ro.signal && ro.signal !== 'SIGKILL') await stopProcess(old, 10_000);
      else {
        try {
          process.kill(old.pid, 'SIGKILL');
        } catch {
          // exited already
        }
        await old.exited;
      }
      if (ro.downMs) await new Promise((r) => setTimeout(r, ro.downMs));
      const proc = await start();
      procs[i]!.proc = proc;
      processes[i]!.pid = proc.pid;
      log.info({ name, pid: proc.pid }, 'control-plane component restarted');
      return processes[i]!;
    };
    return { kubeconfigPath, kubeconfig, server, dir, external: false, processes, stop, restart };
  } catch (err) {
    await stop().catch((stopErr: unknown) => log.error({ err: stopErr }, 'cleanup after a failed start failed'));
    throw err;
  }
}

// One CA signs the apiserver's serving cert and the admin client cert; a separate
// EC key pair signs service-account tokens.
async function writeCredentials(dir: string, server: string, nodeAddress?: string) {
  const ca = await createCA({ commonName: 'diego-local-ca' });
  const [serving, adminCert, sa, kubeletClient] = await Promise.all([
    issueCert(ca, {
      commonName: 'kube-apiserver',
      // 10.0.0.1: the "kubernetes" Service IP
      ipAddresses: ['127.0.0.1', '10.0.0.1', ...(nodeAddress ? [nodeAddress] : [])],
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      usage: 'server',
    }),
    issueCert(ca, { commonName: 'admin', organizations: ['system:masters'], usage: 'client' }),
    generateKeyPairAsync('ec', {
      namedCurve: 'prime256v1',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    }),
    nodeAddress
      ? issueCert(ca, {
          commonName: 'kube-apiserver-kubelet-client',
          organizations: ['system:masters'],
          usage: 'client',
        })
      : undefined,
  ]);
  const caFiles = await writeCertFiles(dir, 'ca', ca);
  const kubeletClientFiles = kubeletClient
    ? await writeCertFiles(dir, 'apiserver-kubelet-client', kubeletClient)
    : undefined;
  const servingFiles = await writeCertFiles(dir, 'apiserver', serving);
  await writeCertFiles(dir, 'admin', adminCert);
  const saPublicKey = join(dir, 'sa.pub');
  const saPrivateKey = join(dir, 'sa.key');
  await writeFile(saPublicKey, sa.publicKey);
  await writeFile(saPrivateKey, sa.privateKey, { mode: 0o600 });
  return {
    files: {
      caCert: caFiles.certPath,
      servingCert: servingFiles.certPath,
      servingKey: servingFiles.keyPath,
      saPublicKey,
      saPrivateKey,
      kubeletClientCert: kubeletClientFiles?.certPath,
      kubeletClientKey: kubeletClientFiles?.keyPath,
    },
    admin: { ca: ca.certPem, cert: adminCert.certPem, key: adminCert.keyPem },
    kubeconfig: adminKubeconfig(server, ca.certPem, adminCert),
  };
}
