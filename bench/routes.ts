// npm run bench:routes — the route emitter at scale: N routed instances (default 10,000: 100 DesiredLRPs × 100
// RUNNING ActualLRPs written straight to a local API server, as cells would report them), a real nats-server, and
// a subscriber counting what gorouter would receive. Prints: the time from the emitter's start to every instance
// registered, one full emit (N router.register messages) as seen by the subscriber, the steady NATS message rate
// with the default 20 s interval, the emitter's CPU and memory, and the scale-down diff (unregisters) of one app.
// A benchmark prints figures; it asserts nothing.
//   INSTANCES=10000 WINDOW_S=60 npm run bench:routes
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { connect } from '@nats-io/transport-node';
import { NatsBus } from '../src/controllers/nats-bus.ts';
import { RouteEmitter } from '../src/controllers/route-emitter.ts';
import { startControlPlane } from '../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../src/lib/kube.ts';
import { createLogger } from '../src/lib/log.ts';
import { pool } from '../src/lib/pool.ts';
import { DiegoClient } from '../src/lib/resources.ts';

const INSTANCES = Number(process.env.INSTANCES ?? 10_000);
const PER_APP = 100;
const WINDOW_S = Number(process.env.WINDOW_S ?? 60);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const apps = Math.ceil(INSTANCES / PER_APP);

const freePort = async () => {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  return port;
};

const cp = await startControlPlane({ logger: log });
const natsPort = await freePort();
const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(natsPort)], { stdio: 'ignore' });
try {
  const kc = kubeConfigFromString(cp.kubeconfig);
  const client = new DiegoClient(kc);
  await installCRDs(kc);
  const ns = 'bench';
  await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
  const t0 = performance.now();
  await pool(
    Array.from({ length: apps }, (_, a) => async () => {
      await client.create('DesiredLRP', {
        metadata: { name: `app-${a}`, namespace: ns },
        spec: {
          processGuid: `app-${a}`,
          domain: 'cf-apps',
          rootFs: 'preloaded:busybox',
          instances: PER_APP,
          ports: [8080],
          logGuid: `app-${a}`,
          metricTags: { source_id: { static: `app-${a}` }, instance_id: { dynamic: 'INDEX' } },
          routes: { 'cf-router': [{ hostnames: [`app-${a}.example.test`], port: 8080 }] },
          action: { run: { path: '/bin/app', user: 'vcap' } },
        },
      });
    }),
    16,
  );
  const now = new Date().toISOString();
  await pool(
    Array.from({ length: INSTANCES }, (_, i) => async () => {
      const a = Math.floor(i / PER_APP);
      const index = i % PER_APP;
      const created = await client.create('ActualLRP', {
        metadata: { name: `app-${a}-${index}`, namespace: ns },
        spec: { processGuid: `app-${a}`, index, domain: 'cf-apps', cellId: `cell-${i % 100}` },
      });
      await client.patchStatus(
        'ActualLRP',
        { namespace: ns, name: created.metadata.name! },
        {
          state: 'RUNNING',
          presence: 'ORDINARY',
          instanceGuid: `guid-${i}`,
          cellId: `cell-${i % 100}`,
          since: now,
          routable: true,
          availabilityZone: `z${i % 3}`,
          netInfo: {
            address: `10.0.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`,
            ports: [{ containerPort: 8080, hostPort: 61000 + (i % 4000) }],
          },
        },
      );
    }),
    32,
  );
  console.log(
    `${apps} DesiredLRPs, ${INSTANCES} RUNNING ActualLRPs written in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );

  // What gorouter would receive.
  const sub = await connect({ servers: `nats://127.0.0.1:${natsPort}`, waitOnFirstConnect: true });
  const seen = new Set<string>();
  let registers = 0;
  let unregisters = 0;
  let bytes = 0;
  let lastAt = 0;
  let firstAt = 0;
  const dec = new TextDecoder();
  sub.subscribe('router.register', {
    callback: (_e, m) => {
      if (registers++ === 0) firstAt = performance.now();
      bytes += m.data.length;
      lastAt = performance.now();
      const msg = JSON.parse(dec.decode(m.data)) as { host: string; port: number };
      seen.add(`${msg.host}:${msg.port}`);
    },
  });
  sub.subscribe('router.unregister', {
    callback: () => {
      unregisters++;
    },
  });
  await sub.flush();

  const bus = await NatsBus.connect({ servers: `nats://127.0.0.1:${natsPort}`, log, greetAttempts: 1 });
  const emitter = new RouteEmitter({ kc, bus, log, namespace: ns });
  const cpu0 = process.cpuUsage();
  const s0 = performance.now();
  await emitter.start();
  for (let i = 0; seen.size < INSTANCES; i++) {
    if (i % 200 === 199) console.log(`waiting: ${seen.size} of ${INSTANCES} registered, ${registers} messages`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const initialS = (performance.now() - s0) / 1000;
  const startCpu = process.cpuUsage(cpu0);

  // One full emit, timed at the subscriber: the burst of INSTANCES registrations after the interval.
  registers = 0;
  bytes = 0;
  while (registers < INSTANCES) await new Promise((r) => setTimeout(r, 5));
  const burstMs = lastAt - firstAt;
  const bytesPerMessage = bytes / Math.max(1, registers);

  // Steady state over the window.
  registers = 0;
  const cpu1 = process.cpuUsage();
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
  const windowS = (performance.now() - w0) / 1000;
  const steady = process.cpuUsage(cpu1);
  const rate = registers / windowS;

  // Scale one app to 0: its registrations are unregistered at once.
  const u0 = performance.now();
  await client.patch('DesiredLRP', { namespace: ns, name: 'app-0' }, { spec: { instances: 0 } });
  await pool(
    Array.from({ length: PER_APP }, (_, i) => () => client.delete('ActualLRP', { namespace: ns, name: `app-0-${i}` })),
    32,
  );
  while (unregisters < PER_APP) await new Promise((r) => setTimeout(r, 10));
  const unregisterS = (performance.now() - u0) / 1000;
  const mem = process.memoryUsage();
  await emitter.stop();
  await bus.close();
  await sub.close();

  console.log(
    `machine: ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(`instances routed: ${INSTANCES} (${apps} routes)`);
  console.log(
    `emitter start → all ${INSTANCES} registered at the subscriber: ${initialS.toFixed(1)} s (emitter CPU ${((startCpu.user + startCpu.system) / 1e6).toFixed(1)} s)`,
  );
  console.log(
    `one full emit (${INSTANCES} router.register): ${burstMs.toFixed(0)} ms at the subscriber, ${bytesPerMessage.toFixed(0)} bytes per message`,
  );
  console.log(
    `steady NATS rate over ${windowS.toFixed(0)} s (20 s interval): ${rate.toFixed(0)} messages/s, emitter CPU ${(((steady.user + steady.system) / 1e6 / windowS) * 100).toFixed(1)} % of one core`,
  );
  console.log(
    `${PER_APP} instances removed → ${PER_APP} router.unregister seen: ${unregisterS.toFixed(2)} s (deletes included)`,
  );
  console.log(
    `bench process (emitter + API clients): RSS ${(mem.rss / 2 ** 20).toFixed(0)} MiB, heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB`,
  );
} finally {
  nats.kill('SIGKILL');
  await cp.stop();
}
