// Volume services for the container store: what Diego's executor gets from volman (code.cloudfoundry.org/volman:
// vollocal's client and syncer, voldiscoverers' driver discovery, voldocker's plugin) and dockerdriver's HTTP
// client. Drivers are Docker volume plugins: JSON POSTs over a unix socket or HTTP(S).
//
// Discovery (volman's rules): each driver path in the order given, and in each path the extensions json, spec, sock
// in that order; the name is the file's name without its extension, and the first file found for a name is used:
//   <name>.json  {"Addr": "<url>", "TLSConfig": {"InsecureSkipVerify", "CAFile", "CertFile", "KeyFile"},
//                 "UniqueVolumeIds": bool}   (its "Name" is not used: the file name is)
//   <name>.spec  the first line is the driver's URL
//   <name>.sock  the driver's unix socket itself
// A URL is http(s)://..., tcp://host:port (plain HTTP), unix://<socket path>, a path ending in .sock (a socket),
// or host:port (plain HTTP). A driver is offered only when POST /Plugin.Activate answers with "VolumeDriver" in
// its Implements; one that does not (unreachable, not a volume driver) is left out, so a later file of the same
// name may stand in for it. Discovery runs again every syncIntervalMs (volman: 30 s) and replaces the table.
//
// For a container's mount: POST /VolumeDriver.Create {Name, Opts: <mount config>}, then POST /VolumeDriver.Mount
// {Name}, whose Mountpoint is the host path; its unmount: POST /VolumeDriver.Unmount {Name}. These are the calls
// and fields volman sends: no ID, so the driver counts the mounts of a name itself (volman does not count them
// either): every container's mount is one Mount and its unmount one Unmount, and a shared volume stays mounted
// until its last container unmounts it. With UniqueVolumeIds the name is "<volume id>_<container id>" (each '_' in
// either part written '='), so each container gets its own volume. Calls for one volume name are made one at a
// time, in order (a mount never overtakes an unmount of the same volume on this cell).
//
// Answers are read as volman reads them: the HTTP status does not matter; a body with a non-empty "Err" is a
// failure. A Mount or Unmount "Err" that is itself a JSON object is a SafeError: its "SafeDescription" may be shown
// to users (the container store appends it to "failed to mount volume"); other failures are only logged.
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { noopLogger, type ExecutorLogger } from './log.ts';

/** volman's driver_paths re-discovery period (vollocal DriverConfig SyncInterval). */
export const DEFAULT_VOLUME_SYNC_INTERVAL_MS = 30_000;
/** How long a Create, Mount or Unmount may take (a network filesystem can be slow to mount). */
export const DEFAULT_VOLUME_REQUEST_TIMEOUT_MS = 5 * 60_000;
/** How long a driver may take to answer /Plugin.Activate during discovery. */
export const DEFAULT_VOLUME_ACTIVATE_TIMEOUT_MS = 10_000;
/** The most of a driver's answer we read. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
/** Spec file extensions in the order volman tries them. */
const SPEC_EXTENSIONS = ['json', 'spec', 'sock'] as const;

export interface DriverTlsConfig {
  insecureSkipVerify: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** A driver found in a driver path. */
export interface VolumeDriverInfo {
  name: string;
  /** The spec file it was found by. */
  specFile: string;
  /** A unix socket path, or an http(s) URL. */
  address: string;
  tls?: DriverTlsConfig;
  uniqueVolumeIds: boolean;
}

/**
 * A failed driver call. `safeDescription` is set when the driver answered with a SafeError (volman's SafeError: a
 * text meant for users); otherwise the message is for the cell's log only.
 */
export class VolumeDriverError extends Error {
  readonly safeDescription: string | undefined;
  constructor(message: string, safeDescription?: string) {
    super(message);
    this.name = 'VolumeDriverError';
    this.safeDescription = safeDescription;
  }
}

export interface VolumeManagerOptions {
  /** Directories holding driver spec files (Diego's volman.driver_paths), searched in order. */
  driverPaths: string[];
  /** Re-discovery period (default 30 s, volman's); 0: discover only when asked. */
  syncIntervalMs?: number;
  requestTimeoutMs?: number;
  activateTimeoutMs?: number;
  logger?: ExecutorLogger;
}

/** A driver ready to be called: where it listens and the TLS material for an https URL. */
interface Driver extends VolumeDriverInfo {
  tlsMaterial?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
}

/** Diego's volman for one cell: finds the cell's volume drivers and mounts and unmounts volumes through them. */
export class VolumeManager {
  readonly #o: Required<Omit<VolumeManagerOptions, 'logger'>>;
  readonly #logger: ExecutorLogger;
  #drivers = new Map<string, Driver>();
  #discovering: Promise<string[]> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The tail of the calls queued per driver + volume name (calls for one volume go one at a time). */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(o: VolumeManagerOptions) {
    this.#o = {
      driverPaths: o.driverPaths,
      syncIntervalMs: o.syncIntervalMs ?? DEFAULT_VOLUME_SYNC_INTERVAL_MS,
      requestTimeoutMs: o.requestTimeoutMs ?? DEFAULT_VOLUME_REQUEST_TIMEOUT_MS,
      activateTimeoutMs: o.activateTimeoutMs ?? DEFAULT_VOLUME_ACTIVATE_TIMEOUT_MS,
    };
    this.#logger = o.logger ?? noopLogger;
  }

  /** Looks for drivers in the driver paths now and replaces the table with what answers; returns their names. */
  discover(): Promise<string[]> {
    // One pass at a time: a caller during a pass gets that pass's answer.
    this.#discovering ??= this.#discover().finally(() => (this.#discovering = undefined));
    return this.#discovering;
  }

  /** Re-discovers every syncIntervalMs until stop() (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer || this.#o.syncIntervalMs <= 0) return;
    this.#timer = setInterval(() => {
      this.discover().catch((err: unknown) =>
        this.#logger.error({ err: String(err) }, 'volume driver re-discovery failed'),
      );
    }, this.#o.syncIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Names of the drivers found by the last discovery, sorted. */
  drivers(): string[] {
    return [...this.#drivers.keys()].sort();
  }

  /** The drivers found by the last discovery: name, spec file, address. */
  driverInfo(): VolumeDriverInfo[] {
    return [...this.#drivers.values()]
      .map(({ name, specFile, address, tls, uniqueVolumeIds }) => ({
        name,
        specFile,
        address,
        uniqueVolumeIds,
        ...(tls ? { tls } : {}),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Mounts volume `volumeId` of `driver` for container `containerId` (Create with the config, then Mount) and
   * returns the host path to bind-mount. Throws VolumeDriverError.
   */
  async mount(
    driver: string,
    volumeId: string,
    containerId: string,
    config: Record<string, unknown> = {},
  ): Promise<string> {
    const d = this.#driver(driver);
    const name = d.uniqueVolumeIds ? uniqueVolumeId(volumeId, containerId) : volumeId;
    return this.#serially(d.name, name, async () => {
      try {
        await this.#call(d, '/VolumeDriver.Create', { Name: name, Opts: config });
      } catch (err) {
        // volman: a Create failure is never a SafeError.
        throw new VolumeDriverError(`volume driver '${d.name}': create of volume '${name}' failed: ${message(err)}`);
      }
      let mountpoint: unknown;
      try {
        mountpoint = (await this.#call(d, '/VolumeDriver.Mount', { Name: name })).Mountpoint;
      } catch (err) {
        throw driverError(d, `mount of volume '${name}'`, err);
      }
      if (typeof mountpoint !== 'string' || !path.isAbsolute(mountpoint)) {
        // The driver counts this mount: give it back so its count stays right.
        await this.#call(d, '/VolumeDriver.Unmount', { Name: name }).catch(() => undefined);
        throw new VolumeDriverError(
          `volume driver '${d.name}': mount of volume '${name}' answered no absolute Mountpoint (${JSON.stringify(mountpoint) ?? 'none'})`,
        );
      }
      this.#logger.info({ driver: d.name, volume: name, containerId, mountpoint }, 'volume mounted');
      return mountpoint;
    });
  }

  /** Unmounts what mount() mounted for this container (one Unmount: the driver counts its mounts). */
  async unmount(driver: string, volumeId: string, containerId: string): Promise<void> {
    const d = this.#driver(driver);
    const name = d.uniqueVolumeIds ? uniqueVolumeId(volumeId, containerId) : volumeId;
    await this.#serially(d.name, name, async () => {
      try {
        await this.#call(d, '/VolumeDriver.Unmount', { Name: name });
      } catch (err) {
        throw driverError(d, `unmount of volume '${name}'`, err);
      }
      this.#logger.info({ driver: d.name, volume: name, containerId }, 'volume unmounted');
    });
  }

  #driver(name: string): Driver {
    const d = this.#drivers.get(name);
    if (!d) {
      const known = this.drivers();
      throw new VolumeDriverError(
        `volume driver '${name}' not found (this cell has ${known.length > 0 ? known.join(', ') : 'none'})`,
      );
    }
    return d;
  }

  /** Runs fn after every call queued before it for the same driver and volume name. */
  async #serially<T>(driver: string, name: string, fn: () => Promise<T>): Promise<T> {
    const key = `${driver}\u0000${name}`;
    const before = this.#queues.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#queues.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    }
  }

  async #discover(): Promise<string[]> {
    const found = new Map<string, Driver>();
    for (const dir of this.#o.driverPaths) {
      let entries: string[];
      try {
        entries = (await readdir(dir)).sort();
      } catch (err) {
        // volman globs the path: a directory that is not there (yet) holds no driver.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          this.#logger.warn({ err: String(err), dir }, 'cannot read volume driver path');
        continue;
      }
      for (const ext of SPEC_EXTENSIONS) {
        for (const file of entries.filter((f) => f.endsWith(`.${ext}`))) {
          const name = file.slice(0, -(ext.length + 1));
          if (name === '' || found.has(name)) continue;
          const specFile = path.join(dir, file);
          let d: Driver;
          try {
            d = await readDriverSpec(name, specFile, ext);
          } catch (err) {
            this.#logger.warn({ err: message(err), specFile }, 'volume driver spec file skipped');
            continue;
          }
          try {
            const answer = await this.#call(d, '/Plugin.Activate', undefined, this.#o.activateTimeoutMs);
            const implementsList = Array.isArray(answer.Implements) ? (answer.Implements as unknown[]) : [];
            if (!implementsList.includes('VolumeDriver')) {
              this.#logger.warn(
                { driver: name, specFile, implements: answer.Implements },
                'not a volume driver: it does not implement VolumeDriver',
              );
              continue;
            }
          } catch (err) {
            this.#logger.warn({ err: message(err), driver: name, specFile }, 'volume driver unreachable');
            continue;
          }
          found.set(name, d);
        }
      }
    }
    const before = this.drivers().join(',');
    this.#drivers = found;
    const now = this.drivers();
    if (now.join(',') !== before) {
      this.#logger.info(
        { drivers: this.driverInfo().map((d) => ({ name: d.name, address: d.address, specFile: d.specFile })) },
        'volume drivers discovered',
      );
    }
    return now;
  }

  /** One POST of the plugin protocol; resolves with the JSON answer, rejects when it carries an Err. */
  #call(
    d: Driver,
    route: string,
    body: Record<string, unknown> | undefined,
    timeoutMs = this.#o.requestTimeoutMs,
  ): Promise<Record<string, unknown>> {
    const payload = body === undefined ? '' : JSON.stringify(body);
    const headers = {
      Accept: 'application/vnd.docker.plugins.v1.2+json',
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(payload),
    };
    return new Promise((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new Error(`${route}: answer larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let answer: unknown;
          try {
            answer = JSON.parse(text);
          } catch {
            return reject(
              new Error(`${route}: not a JSON answer (HTTP ${res.statusCode ?? 0}): ${text.slice(0, 200)}`),
            );
          }
          if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
            return reject(new Error(`${route}: not a JSON object: ${text.slice(0, 200)}`));
          }
          const err = (answer as { Err?: unknown }).Err;
          if (typeof err === 'string' && err !== '') return reject(new DriverAnswerError(err));
          resolve(answer as Record<string, unknown>);
        });
      };
      const common = { method: 'POST', headers, agent: false as const, timeout: timeoutMs };
      const req = d.address.startsWith('https://')
        ? https.request(new URL(route.slice(1), withSlash(d.address)), { ...common, ...d.tlsMaterial }, onResponse)
        : d.address.startsWith('http://')
          ? http.request(new URL(route.slice(1), withSlash(d.address)), common, onResponse)
          : http.request({ ...common, socketPath: d.address, path: route }, onResponse);
      req.on('timeout', () => req.destroy(new Error(`${route}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

/** An answer's non-empty Err (the text the driver sent). */
class DriverAnswerError extends Error {}

/** volman: a Mount/Unmount Err that parses as a JSON object is a SafeError (its SafeDescription is for users). */
function driverError(d: Driver, what: string, err: unknown): VolumeDriverError {
  const text = message(err);
  if (err instanceof DriverAnswerError) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (parsed === null || (typeof parsed === 'object' && !Array.isArray(parsed))) {
      const safe = (parsed as { SafeDescription?: unknown } | null)?.SafeDescription;
      if (safe === undefined || typeof safe === 'string') {
        return new VolumeDriverError(`volume driver '${d.name}': ${what} failed: ${safe ?? ''}`, safe ?? '');
      }
    }
  }
  return new VolumeDriverError(`volume driver '${d.name}': ${what} failed: ${text}`);
}

/** dockerdriver's unique volume id: "<volume>_<container>", each '_' inside either written '='. */
export function uniqueVolumeId(volumeId: string, containerId: string): string {
  return `${volumeId.replaceAll('_', '=')}_${containerId.replaceAll('_', '=')}`;
}

/** Reads one spec file (dockerdriver ReadDriverSpec + volman's driver factory). */
async function readDriverSpec(name: string, specFile: string, ext: (typeof SPEC_EXTENSIONS)[number]): Promise<Driver> {
  if (ext === 'sock') return { name, specFile, address: specFile, uniqueVolumeIds: false };
  const text = await readFile(specFile, 'utf8');
  if (ext === 'spec') {
    const first = text.split('\n')[0]!.trim();
    if (first === '') throw new Error('the first line names no address');
    return { name, specFile, address: canonicalAddress(first), uniqueVolumeIds: false };
  }
  const spec = JSON.parse(text) as {
    Addr?: unknown;
    TLSConfig?: { InsecureSkipVerify?: unknown; CAFile?: unknown; CertFile?: unknown; KeyFile?: unknown } | null;
    UniqueVolumeIds?: unknown;
  };
  if (typeof spec.Addr !== 'string' || spec.Addr.trim() === '') throw new Error('"Addr" names no address');
  const d: Driver = {
    name,
    specFile,
    address: canonicalAddress(spec.Addr.trim()),
    uniqueVolumeIds: spec.UniqueVolumeIds === true,
  };
  const t = spec.TLSConfig;
  if (t && typeof t === 'object') {
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    d.tls = {
      insecureSkipVerify: t.InsecureSkipVerify === true,
      ...(str(t.CAFile) ? { caFile: str(t.CAFile) } : {}),
      ...(str(t.CertFile) ? { certFile: str(t.CertFile) } : {}),
      ...(str(t.KeyFile) ? { keyFile: str(t.KeyFile) } : {}),
    };
    d.tlsMaterial = {
      rejectUnauthorized: !d.tls.insecureSkipVerify,
      ...(d.tls.caFile ? { ca: await readFile(d.tls.caFile) } : {}),
      ...(d.tls.certFile ? { cert: await readFile(d.tls.certFile) } : {}),
      ...(d.tls.keyFile ? { key: await readFile(d.tls.keyFile) } : {}),
    };
  }
  return d;
}

/**
 * A driver URL as volman's factory canonicalizes it: http(s) as given, tcp:// as http://, unix://<path> and a path
 * ending in .sock as a socket, anything else as http://<address>. Returns an http(s) URL or a socket path.
 */
export function canonicalAddress(address: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(address)?.[1]?.toLowerCase();
  const rest = scheme ? address.slice(scheme.length + 3) : address;
  if (scheme === 'http' || scheme === 'https') return address;
  if (scheme === 'tcp') return `http://${rest}`;
  if (scheme === 'unix') return rest.startsWith('/') ? rest : `/${rest}`;
  if (!scheme && address.endsWith('.sock')) return address;
  return `http://${rest}`;
}

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
