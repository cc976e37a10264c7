// npm run bench:bbs — the BBS facade on loopback against a real API server, driven by Diego's own Go client
// (test/bbs-conformance, -scenario load): each of 1, 8 and 64 concurrent callers loops over what Cloud Controller
// does to start an app and look at it — DesireLRP with a fresh process guid, DesiredLRPByProcessGuid of it,
// ActualLRPs filtered by it — over mutual TLS (as Cloud Controller talks to the BBS) and plain HTTP, with the read
// cache (as `diego-operator bbs` runs) and, for comparison, without it (every read from the API server). No
// controller runs, so the figures are the facade plus the API server.
// A benchmark prints figures; it asserts nothing. DURATION_S (default 10) per level; LEVELS (default 1,8,64);
// MODES (default mTLS,HTTP); CACHE (default on,off).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBbsApp } from '../src/bbs/app.ts';
import { CachedDiegoClient } from '../src/bbs/cached-client.ts';
import { createCA, issueCert } from '../src/lib/certs.ts';
import { connectOrStart } from '../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../src/lib/kube.ts';
import { createLogger } from '../src/lib/log.ts';
import { DiegoClient } from '../src/lib/resources.ts';

const DURATION_S = Number(process.env.DURATION_S ?? 10);
const LEVELS = (process.env.LEVELS ?? '1,8,64').split(',').map(Number);
const MODES = (process.env.MODES ?? 'mTLS,HTTP').split(',');
const CACHE = (process.env.CACHE ?? 'on,off').split(',');

const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const cp = await connectOrStart({ logger: log });
const kc = kubeConfigFromString(cp.kubeconfig);
const dir = mkdtempSync(join(tmpdir(), 'bench-bbs-'));

// Diego's client, built once.
const goDir = join(import.meta.dirname, '../test/bbs-conformance');
const loader = join(dir, 'bbs-load');
execFileSync('go', ['build', '-o', loader, '.'], {
  cwd: goDir,
  env: { ...process.env, GOWORK: 'off', GOFLAGS: '-mod=readonly' },
  stdio: 'inherit',
});

interface Call {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
interface Level {
  clients: number;
  seconds: number;
  roundTrips: number;
  errors: number;
  firstError?: string;
  calls: Record<string, Call>;
}

function runLevel(url: string, clients: number, seconds: number, tlsFiles?: string[]): Promise<Level> {
  return new Promise((resolve, reject) => {
    const args = ['-scenario', 'load', '-url', url, '-clients', String(clients), '-duration', `${seconds}s`];
    const child = spawn(loader, [...args, ...(tlsFiles ?? [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`bbs-load exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Level);
    });
  });
}

const rows: (Level & { mode: string; cache: string })[] = [];
try {
  await installCRDs(kc);
  const ca = await createCA();
  const server = await issueCert(ca, { commonName: 'bbs', ipAddresses: ['127.0.0.1'], usage: 'server' });
  const cc = await issueCert(ca, { commonName: 'cloud-controller', usage: 'client' });
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const tlsFiles = [
    '-tls-ca',
    file('ca.crt', ca.certPem),
    '-tls-cert',
    file('cc.crt', cc.certPem),
    '-tls-key',
    file('cc.key', cc.keyPem),
  ];
  for (const mode of MODES) {
    const tls = mode === 'mTLS';
    for (const cache of CACHE) {
      for (const clients of LEVELS) {
        // A fresh namespace per level, so each starts from the same number of stored DesiredLRPs (zero).
        const ns = `bench-bbs-${clients}-${randomBytes(3).toString('hex')}`;
        await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
        const cached = cache === 'on' ? new CachedDiegoClient(kc, { namespace: ns, log }) : undefined;
        await cached?.start();
        const app = buildBbsApp({
          client: cached ?? new DiegoClient(kc),
          namespace: ns,
          logger: log,
          https: tls
            ? { cert: Buffer.from(server.certPem), key: Buffer.from(server.keyPem), ca: Buffer.from(ca.certPem) }
            : undefined,
        });
        await app.listen({ host: '127.0.0.1', port: 0 });
        const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
        process.stdout.write(`${mode}, cache ${cache}: ${clients} concurrent client(s) for ${DURATION_S} s ...\n`);
        await runLevel(url, clients, 2, tls ? tlsFiles : undefined); // warm-up: connections, JIT, caches
        rows.push({ mode, cache, ...(await runLevel(url, clients, DURATION_S, tls ? tlsFiles : undefined)) });
        await app.close();
        await cached?.stop();
        await rawRequest(kc, { method: 'DELETE', path: `/api/v1/namespaces/${ns}` });
      }
    }
  }
  const load = loadavg().map((l) => l.toFixed(1));
  console.log(
    "\nBBS facade on loopback, Diego's Go client: DesireLRP + DesiredLRPByProcessGuid + ActualLRPs per round trip",
  );
  console.log(`(${cpus().length} CPUs, load average ${load.join(' ')} at the end: other work shares the machine)`);
  console.log('mode | cache | clients | round trips/s | desire p50/p99 ms | get p50/p99 ms | list p50/p99 ms | errors');
  console.log('---- | ----- | ------: | ------------: | ----------------: | -------------: | --------------: | -----:');
  const pp = (c: Call | undefined) => (c ? `${c.p50.toFixed(1)} / ${c.p99.toFixed(1)}` : '-');
  for (const r of rows) {
    console.log(
      [
        r.mode.padEnd(4),
        r.cache.padEnd(5),
        String(r.clients).padStart(7),
        (r.roundTrips / r.seconds).toFixed(1).padStart(13),
        pp(r.calls.desire).padStart(17),
        pp(r.calls.get).padStart(14),
        pp(r.calls['list-actuals']).padStart(15),
        `${r.errors}${r.firstError ? ` (${r.firstError})` : ''}`,
      ].join(' | '),
    );
  }
} finally {
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
