// npm run bench:bbs — BBS facade round trips on loopback against a real API server: each round trip is what Cloud
// Controller does to start an app — DesireLRP (desired_lrp/desire.r2) with a fresh process guid, then
// DesiredLRPByProcessGuid (get_by_process_guid.r3) of that guid — measured with 1, 8 and 64 concurrent clients.
// A client is a loop of round trips on its own keep-alive connection: a round trip needs the guid its own desire
// just created, which a fixed-request load tool does not express. Over mutual TLS (as Cloud Controller talks to
// BBS) and plain HTTP. No controller runs, so the figures are the facade plus the apiserver (validation, create,
// GET).
// A benchmark prints figures; it asserts nothing. DURATION_S (default 10) per level; LEVELS (default 1,8,64).
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { buildBbsApp, PROTOBUF } from '../src/bbs/app.ts';
import * as m from '../src/bbs/models.ts';
import { createCA, issueCert } from '../src/lib/certs.ts';
import { connectOrStart } from '../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../src/lib/kube.ts';
import { createLogger } from '../src/lib/log.ts';
import { DiegoClient } from '../src/lib/resources.ts';

const DURATION_MS = Number(process.env.DURATION_S ?? 10) * 1000;
const LEVELS = (process.env.LEVELS ?? '1,8,64').split(',').map(Number);

const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const cp = await connectOrStart({ logger: log });
const kc = kubeConfigFromString(cp.kubeconfig);
const client = new DiegoClient(kc);

const desireBody = (guid: string) =>
  toBinary(
    m.DesireLRPRequestSchema,
    create(m.DesireLRPRequestSchema, {
      desiredLrp: {
        processGuid: guid,
        domain: 'cf-apps',
        rootFs: 'preloaded:cflinuxfs4',
        instances: 1,
        memoryMb: 256,
        diskMb: 1024,
        ports: [8080],
        logGuid: guid,
        action: { runAction: { path: '/tmp/lifecycle/launcher', args: ['app', 'bundle exec rackup'], user: 'vcap' } },
        metricTags: { source_id: { static: guid } },
        routes: { routes: { 'cf-router': new TextEncoder().encode('[{"hostnames":["app.example"],"port":8080}]') } },
        annotation: '1732626000.0',
      },
    }),
  );
const getBody = (guid: string) =>
  toBinary(
    m.DesiredLRPByProcessGuidRequestSchema,
    create(m.DesiredLRPByProcessGuidRequestSchema, { processGuid: guid }),
  );

interface Level {
  clients: number;
  roundTrips: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
}

interface Tls {
  ca: string;
  cert: string;
  key: string;
}

/** One keep-alive connection per client (Node's http/https Agent), over plain HTTP or mutual TLS. */
function poster(url: string, clients: number, tls?: Tls) {
  const agent = tls
    ? new https.Agent({ keepAlive: true, maxSockets: clients, ...tls })
    : new http.Agent({ keepAlive: true, maxSockets: clients });
  const post = (path: string, body: Uint8Array) =>
    new Promise<Uint8Array>((resolve, reject) => {
      const req = (tls ? https : http).request(
        `${url}${path}`,
        { method: 'POST', agent, headers: { 'content-type': PROTOBUF, 'content-length': body.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}

async function runLevel(url: string, clients: number, tls?: Tls, durationMs = DURATION_MS): Promise<Level> {
  const { post, close } = poster(url, clients, tls);
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + durationMs;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; performance.now() < end; i++) {
        const guid = `bench-${clients}-${c}-${i}-${randomBytes(3).toString('hex')}`;
        const start = performance.now();
        const desired = fromBinary(
          m.DesiredLRPLifecycleResponseSchema,
          await post('/v1/desired_lrp/desire.r2', desireBody(guid)),
        );
        const got = fromBinary(
          m.DesiredLRPResponseSchema,
          await post('/v1/desired_lrps/get_by_process_guid.r3', getBody(guid)),
        );
        latencies.push(performance.now() - start);
        if (desired.error || got.error || got.desiredLrp?.processGuid !== guid) errors++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { clients, roundTrips: latencies.length, errors, seconds, p50: q(0.5), p99: q(0.99), max: q(1) };
}

const rows: (Level & { mode: string })[] = [];
try {
  await installCRDs(kc);
  const ca = await createCA();
  const server = await issueCert(ca, { commonName: 'bbs', ipAddresses: ['127.0.0.1'], usage: 'server' });
  const cc = await issueCert(ca, { commonName: 'cloud-controller', usage: 'client' });
  const modes: [string, Tls | undefined][] = [
    ['mTLS', { ca: ca.certPem, cert: cc.certPem, key: cc.keyPem }],
    ['HTTP', undefined],
  ];
  for (const [mode, tls] of modes) {
    for (const clients of LEVELS) {
      // A fresh namespace per level, so each starts from the same number of stored DesiredLRPs (zero).
      const ns = `bench-bbs-${clients}-${randomBytes(3).toString('hex')}`;
      await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
      const app = buildBbsApp({
        client,
        namespace: ns,
        logger: log,
        https: tls
          ? { cert: Buffer.from(server.certPem), key: Buffer.from(server.keyPem), ca: Buffer.from(ca.certPem) }
          : undefined,
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      process.stdout.write(`${mode}: ${clients} concurrent client(s) for ${DURATION_MS / 1000} s ...\n`);
      await runLevel(url, clients, tls, 2000); // warm-up: connections, JIT, the apiserver's caches
      rows.push({ mode, ...(await runLevel(url, clients, tls)) });
      await app.close();
      await rawRequest(kc, { method: 'DELETE', path: `/api/v1/namespaces/${ns}` });
    }
  }
  const load = loadavg().map((l) => l.toFixed(1));
  console.log('\nBBS facade on loopback, desire.r2 + get_by_process_guid.r3 per round trip');
  console.log(`(${cpus().length} CPUs, load average ${load.join(' ')} at the end: other work shares the machine)`);
  console.log('mode | clients | round trips/s | p50 ms | p99 ms | max ms | round trips | errors');
  console.log('---- | ------: | ------------: | -----: | -----: | -----: | ----------: | -----:');
  for (const r of rows) {
    console.log(
      [
        r.mode.padEnd(4),
        String(r.clients).padStart(7),
        (r.roundTrips / r.seconds).toFixed(1).padStart(13),
        r.p50.toFixed(1).padStart(6),
        r.p99.toFixed(1).padStart(6),
        r.max.toFixed(1).padStart(6),
        String(r.roundTrips).padStart(11),
        String(r.errors).padStart(6),
      ].join(' | '),
    );
  }
} finally {
  await cp.stop();
}
