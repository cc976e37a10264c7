// A Docker volume plugin for tests, speaking what volman sends (Plugin.Activate, VolumeDriver.Create, .Mount,
// .Unmount, plus .Get and .List): a Node HTTP server on a unix socket (or 127.0.0.1). Each volume name is a
// directory under `root`, created by Create; Mount answers it as the Mountpoint and counts the mounts of the name,
// Unmount counts down, as real drivers (nfsv3driver, smbdriver) count them. Failures can be injected per call.
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DriverCall {
  route: string;
  body: Record<string, unknown> | undefined;
}

export interface FakeVolumeDriverOptions {
  /** Directory of the volumes (one directory per name). */
  root: string;
  /** Listen on this unix socket path; without it, on 127.0.0.1 and a free port (see `url`). */
  socketPath?: string;
  /** What /Plugin.Activate says it implements (default ['VolumeDriver']). */
  implements?: string[];
  /** Serve HTTPS (TCP only) with this certificate; with `ca`, clients must present a certificate it signed. */
  tls?: { certPem: string; keyPem: string; ca?: string };
}

export interface FakeVolumeDriver {
  server: Server | HttpsServer;
  /** http(s)://127.0.0.1:<port> when listening on TCP. */
  url: string;
  root: string;
  calls: DriverCall[];
  /** Mounts counted per volume name. */
  mounts: Map<string, number>;
  /** The most calls for one volume name that were in progress at once. */
  maxConcurrentPerVolume: number;
  /** The next answers to a route: an Err text (a SafeError is `JSON.stringify({SafeDescription})`) or a body. */
  failNext(route: string, err: string): void;
  answerNext(route: string, body: unknown): void;
  /** Every call of the route waits this long before it is handled. */
  delay: Map<string, number>;
  /** Mounts of these volume names fail with the Err text given. */
  mountErrors: Map<string, string>;
  /** The host directory of a volume name. */
  dirOf(name: string): string;
  close(): Promise<void>;
}

export async function startFakeVolumeDriver(o: FakeVolumeDriverOptions): Promise<FakeVolumeDriver> {
  const calls: DriverCall[] = [];
  const mounts = new Map<string, number>();
  const scripted = new Map<string, unknown[]>();
  const delay = new Map<string, number>();
  const mountErrors = new Map<string, string>();
  const inFlight = new Map<string, number>();
  const dirOf = (name: string) => path.join(o.root, encodeURIComponent(name));
  const driver: FakeVolumeDriver = {
    server: undefined as unknown as Server | HttpsServer,
    url: '',
    root: o.root,
    calls,
    mounts,
    maxConcurrentPerVolume: 0,
    failNext: (route, err) => scripted.set(route, [...(scripted.get(route) ?? []), { Err: err }]),
    answerNext: (route, body) => scripted.set(route, [...(scripted.get(route) ?? []), body]),
    delay,
    mountErrors,
    dirOf,
    close: () =>
      new Promise<void>((resolve) => {
        driver.server.closeAllConnections();
        driver.server.close(() => resolve());
      }),
  };

  const handle = async (route: string, body: Record<string, unknown> | undefined): Promise<unknown> => {
    const name = typeof body?.Name === 'string' ? body.Name : '';
    const wait = delay.get(route);
    if (wait) await sleep(wait);
    const queued = scripted.get(route);
    if (queued && queued.length > 0) return queued.shift();
    switch (route) {
      case '/Plugin.Activate':
        return { Implements: o.implements ?? ['VolumeDriver'] };
      case '/VolumeDriver.Create':
        if (!name) return { Err: 'Missing mandatory Name' };
        await mkdir(dirOf(name), { recursive: true });
        return { Err: '' };
      case '/VolumeDriver.Mount':
        if (!name) return { Err: 'Missing mandatory Name' };
        if (mountErrors.has(name)) return { Err: mountErrors.get(name) };
        mounts.set(name, (mounts.get(name) ?? 0) + 1);
        return { Err: '', Mountpoint: dirOf(name) };
      case '/VolumeDriver.Unmount': {
        const n = mounts.get(name) ?? 0;
        if (n === 0) return { Err: `volume ${name} is not mounted` };
        if (n === 1) mounts.delete(name);
        else mounts.set(name, n - 1);
        return { Err: '' };
      }
      case '/VolumeDriver.Get':
        return { Volume: { Name: name, Mountpoint: dirOf(name), MountCount: mounts.get(name) ?? 0 }, Err: '' };
      case '/VolumeDriver.List':
        return { Volumes: [...mounts.keys()].map((Name) => ({ Name, Mountpoint: dirOf(Name) })), Err: '' };
      default:
        return { Err: `unknown route ${route}` };
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      const route = req.url ?? '';
      calls.push({ route, body });
      const key = typeof body?.Name === 'string' ? body.Name : '';
      inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      if (key) driver.maxConcurrentPerVolume = Math.max(driver.maxConcurrentPerVolume, inFlight.get(key)!);
      try {
        const answer = await handle(route, body);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
      } finally {
        inFlight.set(key, inFlight.get(key)! - 1);
      }
    })().catch((err: unknown) => res.writeHead(500).end(JSON.stringify({ Err: String(err) })));
  };
  const server: Server | HttpsServer = o.tls
    ? createHttpsServer(
        {
          cert: o.tls.certPem,
          key: o.tls.keyPem,
          ...(o.tls.ca ? { ca: o.tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
        },
        listener,
      )
    : createServer(listener);
  driver.server = server;
  await mkdir(o.root, { recursive: true });
  const listen = (...args: unknown[]) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      (server.listen as (...a: unknown[]) => void)(...args, () => {
        server.off('error', reject);
        resolve();
      });
    });
  if (o.socketPath) {
    await mkdir(path.dirname(o.socketPath), { recursive: true });
    await listen(o.socketPath);
  } else {
    await listen(0, '127.0.0.1');
    driver.url = `${o.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  return driver;
}
