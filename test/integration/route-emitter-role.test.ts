// `diego-operator route-emitter` as operators run it: two replicas (leader election on a Lease) against a real
// nats-server that requires TLS and a user/password, as a production NATS does. Wrong credentials fail with a
// message that says so; the leader is killed (-9) and the other replica takes over, routes keep flowing.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NatsBus } from '../../src/controllers/nats-bus.ts';
import type { IDesiredLRP } from '../../src/crds/models.ts';
import { createCA, issueCert, writeCertFiles } from '../../src/lib/certs.ts';
import { rawRequest } from '../../src/lib/kube.ts';
import type { RegistryMessage } from '../../src/lifecycle/routing-table.ts';
import { exitOf, outputOf } from '../support/child.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { freePort } from '../support/nats-router.ts';

const env = useDiego('re-role', { convergeIntervalMs: 1000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'diego-re-role-'));
const user = 'emitter';
const pass = 's3cret-pass';
let port = 0;
let nats: ChildProcess;
const replicas: ChildProcess[] = [];
const tls = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'client.crt'), key: path.join(dir, 'client.key') };

beforeAll(async () => {
  const ca = await createCA({ commonName: 'nats-test-ca' });
  await writeCertFiles(dir, 'ca', ca);
  await writeCertFiles(
    dir,
    'server',
    await issueCert(ca, { commonName: 'nats', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' }),
  );
  await writeCertFiles(dir, 'client', await issueCert(ca, { commonName: 'emitter', usage: 'client' }));
  writeFileSync(path.join(dir, 'password'), `${pass}\n`);
  port = await freePort();
  nats = spawn(
    'nats-server',
    [
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '--user',
      user,
      '--pass',
      pass,
      '--tls',
      '--tlscert',
      path.join(dir, 'server.crt'),
      '--tlskey',
      path.join(dir, 'server.key'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await outputOf(nats, nats.stderr!, (err) => err.includes('Server is ready') || undefined, 60_000, 'nats-server');
});

afterAll(() => {
  nats?.kill('SIGKILL');
  // A test that timed out never reached its finally: its replicas (they share this process's stderr) end here.
  for (const p of replicas) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const url = () => `tls://127.0.0.1:${port}`;

function emitterProcess(): ChildProcess {
  return spawn(
    process.execPath,
    [
      'src/main.ts',
      'route-emitter',
      `--kubeconfig=${inject('kubeconfigPath')}`,
      `--system-namespace=${env.systemNamespace}`,
      `--namespace=${env.ns}`,
      `--nats-servers=${url()}`,
      `--nats-user=${user}`,
      `--nats-password-file=${path.join(dir, 'password')}`,
      `--nats-tls-ca=${tls.ca}`,
      `--nats-tls-cert=${tls.cert}`,
      `--nats-tls-key=${tls.key}`,
      '--metrics-address=127.0.0.1:0',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
}

const app = (name: string): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
  metadata: { name, namespace: env.ns },
  spec: {
    processGuid: name,
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances: 1,
    ports: [8080],
    routes: { 'cf-router': [{ hostnames: [`${name}.example.test`], port: 8080 }] },
    action: { run: { path: '/bin/app', user: 'root' } },
  },
});

describe('the route-emitter role', () => {
  it('refuses wrong NATS credentials with a message that says so', async () => {
    const err = await NatsBus.connect({
      servers: url(),
      user,
      pass: 'wrong',
      tlsCaFile: tls.ca,
      log: env.log,
    }).then(
      () => 'connected',
      (e: unknown) => String(e),
    );
    expect(err).toMatch(/refused the route emitter: .*authorization.*Check --nats-user/i);
  });

  it(
    'emits from one replica at a time; the other takes over when the leader is killed (-9)',
    { timeout: 240_000 },
    async () => {
      const sub = await connect({ servers: url(), user, pass, tls: { caFile: tls.ca } });
      const registered = new Map<string, RegistryMessage>();
      sub.subscribe('router.register', {
        callback: (_e, m) => {
          const msg = JSON.parse(new TextDecoder().decode(m.data)) as RegistryMessage;
          registered.set(msg.uris[0]!, msg);
        },
      });
      await sub.flush();
      replicas.push(emitterProcess(), emitterProcess());
      try {
        await env.startCells(1, () => ({ address: '10.250.0.7' }));
        await client.create('DesiredLRP', app('web'));
        await eventually(() => expect(registered.size).toBe(1), 60_000);
        const holder = async () =>
          (
            await rawRequest<{ spec: { holderIdentity?: string } }>(env.kc, {
              method: 'GET',
              path: `/apis/coordination.k8s.io/v1/namespaces/${env.systemNamespace}/leases/diego-operator-route-emitter`,
            })
          ).spec.holderIdentity ?? '';
        const leader = await holder();
        const victim = replicas.find((p) => leader.endsWith(`-${p.pid}`));
        expect(victim, `leader ${leader}`).toBeDefined();
        victim!.kill('SIGKILL');
        await exitOf(victim!, 30_000, 'the leader (SIGKILLed)');
        // Work after the kill is routed by the other replica once it holds the Lease.
        await client.create('DesiredLRP', app('api'));
        await eventually(async () => {
          expect(await holder()).not.toBe(leader);
          expect(registered.size).toBe(2);
        }, 120_000);
      } finally {
        for (const p of replicas) p.kill('SIGKILL');
        await sub.close();
      }
    },
  );
});
