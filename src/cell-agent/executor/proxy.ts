// The container proxy: what Diego's per-instance Envoy does (executor proxy_config_handler.go, envoyconfig,
// transformer's container proxy step), built from socat. For every proxy port mapping of an instance one
// `socat OPENSSL-LISTEN:<port>,fork,... TCP:<container address>:<app port>` terminates TLS with the instance identity
// certificate (<credentials dir>/instance.crt: leaf then CA; instance.key) and forwards plain TCP to the app.
//
// Where it runs: on the host, started by the agent, so nothing in the container can see, read or kill it.
// * A container with its own network namespace (runc, containerd with CNI: Container.netnsPath): socat runs in
//   that namespace (`nsenter --net=<path>`), listens on the proxy port (61001.., 61443) and dials the app port
//   at the container's address, as Envoy does inside Diego's container (its clusters point at the container's
//   internal IP). The backend's port mappings reach the proxy ports like app ports; 61443 is reached at the
//   container's address only (container to container).
// * On the host network (process backend, runc without CNI) a container's ports are host ports: socat listens on
//   the host port mapped to the proxy port and dials 127.0.0.1:<host port of the app port>. 61443 gets no
//   listener there: it would be the same host port for every container, and host-network containers have no
//   address of their own to be reached at.
//
// Connections idle for an hour are closed (Envoy's tcp_proxy default idle timeout, which Diego keeps).
//
// TLS: at least TLS 1.2; TLS 1.2 ciphers are Diego's (ECDHE-RSA with AES-GCM) plus their ECDSA twins, because
// our identity keys are ECDSA (docs/differences.md); TLS 1.3 uses OpenSSL's suites. With requireClientCerts
// (Diego's container_proxy_require_and_verify_client_certs) the proxy ports other than 61443 (as in Diego)
// accept only clients whose certificate chains to trustedCaFile (container_proxy_trusted_ca_certs). Diego's
// separate container-to-container certificate and container_proxy_verify_subject_alt_name are not done: 61443
// serves the instance certificate, and socat can match one name only.
//
// Lifetime: socat is started detached in a session of its own (its per-connection children share its process
// group), so it outlives an agent restart as container processes do. `<stateDir>/<handle>.json` records the
// credentials directory, the namespace and the listeners (pid + start time); the processes themselves are found
// by their command line, which names the container's certificate file (unique per cell and container). stop()
// kills all of them (listeners and open connections). A container destroyed without stop() — an orphan that
// bulk sync destroys after the agent was killed, whose proxy no agent adopted — is noticed by the runner's
// periodic check: a record whose credentials directory is gone (ContainerStore.destroy always removes it) has
// its processes killed within checkIntervalMs.
//
// Certificate rotation: socat loads the certificate once, when it starts (the forked per-connection children
// inherit it; checked in proxy.test.ts). The periodic check compares instance.crt (inode, mtime, size) with the
// one the listeners loaded; when InstanceIdentity has replaced it, each listener is reloaded without a gap: a
// new socat binds the same port beside the old one (SO_REUSEPORT), then the old listener gets SIGTERM — its
// children keep serving the connections they have, with the old certificate, until they close. A listener that
// died is restarted by the same check. adopt() keeps the previous agent's listeners when they still run with
// the current certificate and reloads them otherwise (ContainerStore.adopt re-issues the certificate first).
//
// Needs socat (Debian package) and, for network namespaces, nsenter (util-linux) and root.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm, stat, truncate } from 'node:fs/promises';
import { writeFileAtomic } from '../../lib/files.ts';
import path from 'node:path';
import type { Container } from '../backends/types.ts';
import { C2C_TLS_PORT, type ContainerProxyRunner, type ProxyPortMapping } from './container-store.ts';
import { noopLogger, type ExecutorLogger } from './log.ts';

/** Diego's failure reason when a proxy port does not come up (transformer: the proxy's startup check). */
export const PROXY_FAILED_TO_START = 'instance proxy failed to start';

/** TLS 1.2 cipher suites: Diego's SupportedCipherSuites (RSA) and the same suites for ECDSA keys. */
export const PROXY_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES128-GCM-SHA256',
];

export const DEFAULT_PROXY_CHECK_INTERVAL_MS = 10_000;
const DEFAULT_START_TIMEOUT_MS = 10_000;
/** Envoy's tcp_proxy idle timeout (its default; Diego's proxy config does not set one), in seconds. */
const IDLE_TIMEOUT_S = 3600;
/** A proxy's log (socat's errors, e.g. failed handshakes) is emptied past this size. */
const MAX_LOG_BYTES = 1024 * 1024;
/** Paths that socat's address syntax takes literally (no ',', ':', quotes, brackets, spaces...). */
const SOCAT_SAFE_PATH = /^[\w\-./+@%~]+$/;

export interface SocatProxyOptions {
  /** Host directory for the runner's records and logs (one .json and one .log per container). */
  stateDir: string;
  /** Diego's container_proxy_require_and_verify_client_certs: proxy ports (not 61443) need a client certificate. */
  requireClientCerts?: boolean;
  /** PEM file of the CAs client certificates must chain to (Diego's container_proxy_trusted_ca_certs). */
  trustedCaFile?: string;
  /** How often certificates, listeners and destroyed containers are looked at (default 10 s). */
  checkIntervalMs?: number;
  /** How long a listener may take to listen before start fails (default 10 s). */
  startTimeoutMs?: number;
  /** Executables (default: socat and nsenter from PATH). */
  socat?: string;
  nsenter?: string;
  logger?: ExecutorLogger;
}

/** One socat listener as recorded. */
interface Listener {
  proxyPort: number;
  appPort: number;
  /** Where socat listens: the proxy port in the container's namespace, its host port on the host network. */
  listenPort: number;
  /** Where it dials, in the same namespace: the container's address, or 127.0.0.1 on the host network. */
  targetHost: string;
  targetPort: number;
  verifyClient: boolean;
  pid: number;
  /** /proc/<pid>/stat's start time: tells the process from a later one with the same pid. */
  startTime: string;
}

type ListenerSpec = Omit<Listener, 'pid' | 'startTime'>;

interface ProxyRecord {
  handle: string;
  credentialsDir: string;
  /** The container's network namespace; absent: the host network. */
  netns?: string;
  /** instance.crt as the listeners loaded it (inode, mtime, size). */
  cert: string;
  listeners: Listener[];
}

/** The container proxy as host socat processes (see the top of this file). */
export class SocatProxyRunner implements ContainerProxyRunner {
  readonly #o: SocatProxyOptions;
  readonly #logger: ExecutorLogger;
  readonly #socat: string;
  readonly #nsenter: string;
  /** Containers this runner started or adopted: their certificates and listeners are watched. */
  readonly #managed = new Set<string>();
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #timer: NodeJS.Timeout;
  #checking?: Promise<void>;

  constructor(o: SocatProxyOptions) {
    if (o.requireClientCerts && !o.trustedCaFile) {
      throw new Error('requiring client certificates needs a trusted CA file (--container-proxy-trusted-ca)');
    }
    if (o.trustedCaFile !== undefined && !SOCAT_SAFE_PATH.test(path.resolve(o.trustedCaFile))) {
      throw new Error(`container proxy: the path ${o.trustedCaFile} has characters socat cannot take in an address`);
    }
    this.#o = { ...o, stateDir: path.resolve(o.stateDir) };
    this.#logger = o.logger ?? noopLogger;
    this.#socat = o.socat ?? 'socat';
    this.#nsenter = o.nsenter ?? 'nsenter';
    // Also for containers this runner never saw: orphans of a previous agent are destroyed without stop().
    this.#timer = setInterval(() => void this.check(), o.checkIntervalMs ?? DEFAULT_PROXY_CHECK_INTERVAL_MS);
    this.#timer.unref();
  }

  async start(handle: string, container: Container, mappings: ProxyPortMapping[], credentialsDir: string) {
    const dir = path.resolve(credentialsDir);
    await this.#serial(handle, async () => {
      try {
        const rec = await this.#newRecord(handle, container, dir);
        await this.#kill(dir); // leftovers of an earlier container with this handle, if any
        for (const spec of await this.#plan(container, mappings)) {
          rec.listeners.push(await this.#launch(rec, spec));
          await this.#write(rec);
        }
      } catch (err) {
        this.#logger.error({ err: String(err), handle }, 'container proxy: failed to start');
        await this.#kill(dir);
        await this.#forget(handle);
        throw new Error(PROXY_FAILED_TO_START, { cause: err });
      }
      this.#managed.add(handle);
    });
  }

  async adopt(handle: string, container: Container, mappings: ProxyPortMapping[], credentialsDir: string) {
    const dir = path.resolve(credentialsDir);
    await this.#serial(handle, async () => {
      const old = await this.#read(handle);
      const retire: Listener[] = [];
      let rec: ProxyRecord;
      try {
        rec = await this.#newRecord(handle, container, dir);
        // The previous agent's listeners are kept only while they serve the current certificate.
        const current = old?.credentialsDir === dir && old.netns === rec.netns && old.cert === rec.cert;
        for (const spec of await this.#plan(container, mappings)) {
          const prev = (old?.listeners ?? []).find((l) => sameSpec(l, spec));
          if (prev && current && (await isRunning(prev))) {
            rec.listeners.push(prev);
            continue;
          }
          if (prev) retire.push(prev);
          rec.listeners.push(await this.#launch(rec, spec));
          await this.#write(rec);
        }
        await this.#write(rec);
      } catch (err) {
        this.#logger.error({ err: String(err), handle }, 'container proxy: failed to re-take');
        await this.#kill(dir);
        await this.#forget(handle);
        throw new Error(PROXY_FAILED_TO_START, { cause: err });
      }
      // Listeners of the previous agent not kept (old certificate, no longer wanted, unrecorded) stop accepting;
      // their children finish the connections they have.
      for (const l of retire) if (await isRunning(l)) signal(l.pid, 'SIGTERM');
      const ours = new Set(rec.listeners.map((l) => l.pid));
      for (const pid of await socatPids(this.#socat, dir)) {
        if (!ours.has(pid) && (await listens(pid))) signal(pid, 'SIGTERM');
      }
      this.#managed.add(handle);
    });
  }

  async stop(handle: string): Promise<void> {
    await this.#serial(handle, async () => {
      this.#managed.delete(handle);
      const rec = await this.#read(handle);
      if (rec) await this.#kill(rec.credentialsDir);
      await this.#forget(handle);
    });
  }

  /** Stops the periodic check; the proxies go on running (an agent handing its containers to the next). */
  close(): void {
    clearInterval(this.#timer);
  }

  /**
   * The periodic check (also callable): proxies of destroyed containers are killed; for containers this runner
   * manages, listeners are reloaded when the certificate was replaced and restarted when they died.
   */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #check(): Promise<void> {
    const names = await readdir(this.#o.stateDir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const handle = name.slice(0, -'.json'.length);
      await this.#serial(handle, async () => {
        const rec = await this.#read(handle);
        if (!rec) return;
        if (!existsSync(rec.credentialsDir)) {
          this.#managed.delete(handle);
          await this.#kill(rec.credentialsDir);
          await this.#forget(handle);
          this.#logger.info({ handle }, 'container proxy: stopped the proxy of a destroyed container');
          return;
        }
        if (this.#managed.has(handle)) await this.#refresh(rec);
        const log = this.#logFile(handle);
        if (((await stat(log).catch(() => undefined))?.size ?? 0) > MAX_LOG_BYTES) await truncate(log, 0);
      }).catch((err: unknown) => this.#logger.error({ err: String(err), handle }, 'container proxy: check failed'));
    }
  }

  /** Reloads the listeners onto a replaced certificate; restarts dead ones. A failure is tried again next time. */
  async #refresh(rec: ProxyRecord): Promise<void> {
    const cert = await certPrint(rec.credentialsDir).catch(() => rec.cert);
    const rotated = cert !== rec.cert;
    let changed = false;
    for (const [i, l] of rec.listeners.entries()) {
      const running = await isRunning(l);
      if (running && !rotated) continue;
      try {
        rec.listeners[i] = await this.#launch(rec, l);
        changed = true;
        if (running)
          signal(l.pid, 'SIGTERM'); // the old listener; its connections go on
        else this.#logger.warn({ handle: rec.handle, port: l.listenPort }, 'container proxy: restarted a listener');
      } catch (err) {
        this.#logger.error({ err: String(err), handle: rec.handle }, 'container proxy: could not (re)start');
        return;
      }
    }
    if (rotated) {
      rec.cert = cert;
      changed = true;
      this.#logger.info({ handle: rec.handle }, 'container proxy: reloaded the rotated certificate');
    }
    if (changed) await this.#write(rec);
  }

  async #newRecord(handle: string, container: Container, credentialsDir: string): Promise<ProxyRecord> {
    const dir = path.resolve(credentialsDir);
    if (!SOCAT_SAFE_PATH.test(dir)) {
      throw new Error(`container proxy: the credentials directory ${dir} has characters socat cannot take`);
    }
    const rec: ProxyRecord = {
      handle,
      credentialsDir: dir,
      ...(container.netnsPath ? { netns: container.netnsPath } : {}),
      cert: await certPrint(dir),
      listeners: [],
    };
    await this.#write(rec); // before any process starts: whatever happens next, its processes can be found
    return rec;
  }

  /** The listeners a container's mappings need (see the top of this file for the host network). */
  async #plan(container: Container, mappings: ProxyPortMapping[]): Promise<ListenerSpec[]> {
    const requireClient = (m: ProxyPortMapping) =>
      (this.#o.requireClientCerts ?? false) && m.proxyPort !== C2C_TLS_PORT;
    const { ip, ports } = await container.info();
    if (container.netnsPath) {
      return mappings.map((m) => ({
        proxyPort: m.proxyPort,
        appPort: m.appPort,
        listenPort: m.proxyPort,
        targetHost: ip ?? '127.0.0.1',
        targetPort: m.appPort,
        verifyClient: requireClient(m),
      }));
    }
    const hostPort = (p: number) => {
      const found = ports.find((m) => m.containerPort === p)?.hostPort;
      if (!found) throw new Error(`container port ${p} has no host port`);
      return found;
    };
    return mappings
      .filter((m) => m.proxyPort !== C2C_TLS_PORT)
      .map((m) => ({
        proxyPort: m.proxyPort,
        appPort: m.appPort,
        listenPort: hostPort(m.proxyPort),
        targetHost: '127.0.0.1',
        targetPort: hostPort(m.appPort),
        verifyClient: requireClient(m),
      }));
  }

  /** Starts one socat listener, detached; resolves once it listens. */
  async #launch(rec: ProxyRecord, spec: ListenerSpec): Promise<Listener> {
    const socat = [this.#socat, ...this.#socatArgs(rec, spec)];
    const [file, ...args] = rec.netns ? [this.#nsenter, `--net=${rec.netns}`, '--', ...socat] : socat;
    await mkdir(this.#o.stateDir, { recursive: true });
    const log = openSync(this.#logFile(rec.handle), 'a');
    let exited: string | undefined;
    let child;
    try {
      // A session of its own (setsid), output to a file: no pipe to the agent that could break when it goes.
      child = spawn(file!, args, { detached: true, stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    child.once('error', (err) => (exited = err.message));
    child.once('exit', (code, sig) => (exited ??= `exited with ${sig ?? code ?? '?'}`));
    child.unref();
    const pid = child.pid;
    const deadline = Date.now() + (this.#o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    for (;;) {
      if (exited !== undefined || pid === undefined) {
        const tail = (await readFile(this.#logFile(rec.handle), 'utf8').catch(() => '')).trim().split('\n').at(-1);
        throw new Error(`socat on port ${spec.listenPort} ${exited ?? 'did not start'}${tail ? `: ${tail}` : ''}`);
      }
      if (await listens(pid, spec.listenPort)) break;
      if (Date.now() > deadline) {
        signal(pid, 'SIGKILL');
        throw new Error(`socat did not listen on port ${spec.listenPort} within the start timeout`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return { ...spec, pid, startTime: (await procStat(pid))?.startTime ?? '' };
  }

  #socatArgs(rec: ProxyRecord, spec: ListenerSpec): string[] {
    const listen = [
      `OPENSSL-LISTEN:${spec.listenPort}`,
      'fork',
      'reuseaddr',
      'reuseport', // a reload binds the new listener beside the old one
      'backlog=1024',
      `cert=${certFile(rec.credentialsDir)}`,
      `key=${path.join(rec.credentialsDir, 'instance.key')}`,
      'min-version=TLS1.2',
      `cipher=${PROXY_CIPHERS.join(':')}`,
      ...(spec.verifyClient ? ['verify=1', `cafile=${path.resolve(this.#o.trustedCaFile ?? '')}`] : ['verify=0']),
    ];
    const host = spec.targetHost.includes(':') ? `[${spec.targetHost}]` : spec.targetHost; // IPv6 in brackets
    const target = `TCP:${host}:${spec.targetPort},nodelay`;
    return ['-lp', `diego-proxy[${rec.handle}]`, '-T', String(IDLE_TIMEOUT_S), listen.join(','), target];
  }

  /** Kills every socat of the container (listeners and connections): SIGTERM, then SIGKILL after 2 s. */
  async #kill(credentialsDir: string): Promise<void> {
    for (const [sig, waitMs] of [
      ['SIGTERM', 2_000],
      ['SIGKILL', 10_000],
    ] as const) {
      let pids = await socatPids(this.#socat, credentialsDir);
      if (pids.length === 0) return;
      for (const pid of pids) signal(pid, sig);
      const deadline = Date.now() + waitMs;
      while (pids.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        pids = await socatPids(this.#socat, credentialsDir);
      }
      if (pids.length === 0) return;
    }
    throw new Error(`container proxy: socat processes of ${credentialsDir} did not die`);
  }

  async #read(handle: string): Promise<ProxyRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.#recordFile(handle), 'utf8')) as ProxyRecord;
    } catch {
      return undefined;
    }
  }

  async #write(rec: ProxyRecord): Promise<void> {
    await mkdir(this.#o.stateDir, { recursive: true, mode: 0o700 });
    const file = this.#recordFile(rec.handle);
    await writeFileAtomic(file, JSON.stringify(rec));
  }

  async #forget(handle: string): Promise<void> {
    await rm(this.#recordFile(handle), { force: true });
    await rm(this.#logFile(handle), { force: true });
  }

  #recordFile(handle: string): string {
    return path.join(this.#o.stateDir, `${handle}.json`);
  }

  #logFile(handle: string): string {
    return path.join(this.#o.stateDir, `${handle}.log`);
  }

  /** One operation at a time per container (start, adopt, stop and the check). */
  #serial<T>(handle: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#locks.get(handle) ?? Promise.resolve()).then(fn, fn);
    const settled = run.catch(() => undefined);
    this.#locks.set(handle, settled);
    void settled.then(() => this.#locks.get(handle) === settled && this.#locks.delete(handle));
    return run;
  }
}

const sameSpec = (a: ListenerSpec, b: ListenerSpec) =>
  a.proxyPort === b.proxyPort &&
  a.appPort === b.appPort &&
  a.listenPort === b.listenPort &&
  a.targetHost === b.targetHost &&
  a.targetPort === b.targetPort &&
  a.verifyClient === b.verifyClient;

const certFile = (credentialsDir: string) => path.join(credentialsDir, 'instance.crt');

async function certPrint(credentialsDir: string): Promise<string> {
  const s = await stat(certFile(credentialsDir));
  return `${s.ino}:${s.mtimeMs}:${s.size}`;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** State and start time from /proc/<pid>/stat; undefined for a process that is gone or a zombie. */
async function procStat(pid: number): Promise<{ startTime: string } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ... starttime is field 22; comm may hold spaces, so count after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return { startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** Whether a recorded listener is still that process. */
async function isRunning(l: Listener): Promise<boolean> {
  const s = await procStat(l.pid);
  return s !== undefined && s.startTime === l.startTime;
}

/**
 * The live socat processes serving a container: their command line names its certificate file. Listeners and
 * per-connection children alike, of this agent or a previous one.
 */
async function socatPids(socat: string, credentialsDir: string): Promise<number[]> {
  const marker = `,cert=${certFile(credentialsDir)},`;
  const name = path.basename(socat);
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (path.basename(argv[0] ?? '') !== name || !argv.some((a) => a.includes(marker))) continue;
    if (await procStat(Number(entry))) pids.push(Number(entry));
  }
  return pids;
}

/**
 * Whether the process has a listening TCP socket (on `port`, when given) — read from its own network
 * namespace's tables (/proc/<pid>/net/tcp*) and matched against its file descriptors, so a listener on the same
 * port in another process (a reload's predecessor) does not count.
 */
async function listens(pid: number, port?: number): Promise<boolean> {
  const inodes = new Set<string>();
  try {
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
      if (m) inodes.add(m[1]!);
    }
  } catch {
    return false;
  }
  if (inodes.size === 0) return false;
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== '0A' || !inodes.has(cols[9] ?? '')) continue; // 0A: LISTEN
      if (port === undefined || parseInt(cols[1]?.split(':')[1] ?? '', 16) === port) return true;
    }
  }
  return false;
}
