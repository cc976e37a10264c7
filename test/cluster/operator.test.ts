// diego-operator installed with `helm install` into a real cluster (test/cluster/global-setup.ts): the image built by
// hack/build-image.sh, the chart's defaults (2 controller replicas with leader election, the webhook behind its
// Service with the chart's certificate, the cell agent as a privileged DaemonSet) and the BBS with mutual TLS. Then
// what users, operators and faults do: an app runs in runc containers made by the DaemonSet's pod and answers on the
// node's host ports; an invalid manifest is refused through the webhook Service; Diego's Go BBS client runs its
// scenario through the BBS Service, and Diego's Locket client through Locket beside it; the leader's pod is killed
// and work goes on; the cell agent is killed (-9) or its pod deleted and the running containers are adopted;
// `helm upgrade` (CRDs first) changes a value and rolls the agent without moving an app; `kubectl drain` evacuates
// the node's instances to another cell; `helm uninstall` with apps still running leaves no container, network
// namespace, cgroup, mount or finalizer behind.
import { execFile, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import type { IActualLRP } from '../../src/crds/models.ts';
import { createCA, issueCert, writeCertFiles } from '../../src/lib/certs.ts';
import { kubeConfigFromString, rawRequest } from '../../src/lib/kube.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { API_SCENARIO_STEPS, runBbsClient } from '../support/bbs-go.ts';
import { outputOf } from '../support/child.ts';
import { eventually } from '../support/eventually.ts';
import { alive, containerPids as hostContainerPids, ctr, leftOf, nodeSh } from './host.ts';
import { freePort, NatsServer, TestRouter } from '../support/nats-router.ts';
import { SimCell } from '../support/sim-cell.ts';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..');
const kubeconfig = inject('clusterKubeconfigPath');
const kc = kubeConfigFromString(inject('clusterKubeconfig'));
const client = new DiegoClient(kc);
const node = inject('clusterNode');
const [repository, tag] = inject('clusterImages')
  .operator.replace(/^docker\.io\/library\//, '')
  .split(':') as [string, string];
const system = 'diego-system';
const stateDir = inject('clusterStateDir');
const external = inject('clusterExternal');
const apps = 'apps';
const release = 'diego';
// A fixed cluster IP for the BBS Service (in the control plane's 10.0.0.0/24), so its server certificate can name it;
// on an external cluster (kind) the suite reaches the BBS through `kubectl port-forward` on 127.0.0.1 instead.
const bbsIp = '10.0.0.200';
const bbsPort = 8889;
const tlsDir = mkdtempSync(join(tmpdir(), 'diego-bbs-tls-'));

const helm = (...args: string[]) =>
  run(inject('clusterHelm'), [...args, `--kubeconfig=${kubeconfig}`], { cwd: repo, timeout: 600_000 });
const kubectl = (...args: string[]) =>
  run(inject('clusterKubectl'), [`--kubeconfig=${kubeconfig}`, ...args], { timeout: 120_000 });

interface Pod {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}
const pods = async (selector: string) =>
  (
    await rawRequest<{ items: Pod[] }>(kc, {
      method: 'GET',
      path: `/api/v1/namespaces/${system}/pods?labelSelector=${encodeURIComponent(selector)}`,
    })
  ).items;
const ready = (p: Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const instances = async (guid: string) =>
  (await client.list('ActualLRP', { namespace: apps })).filter((a) => a.spec.processGuid === guid);
const running = (as: IActualLRP[]) => as.filter((a) => a.status?.state === 'RUNNING');
const hostPort = (a: IActualLRP) => a.status?.netInfo?.ports?.find((p) => p.containerPort === 8080)?.hostPort;
/** Each runc container of the cell agent on the host and its init process (host invariants across agent restarts). */
const runcRoot = join(stateDir, 'runc');
const containerPids = () => hostContainerPids(runcRoot);
const agentPod = async () => {
  const [p] = await pods('app.kubernetes.io/component=cell-agent');
  return p!;
};
/** The cell agent pod `pod` says it adopted each of `instances` (its log), i.e. it supervises them. */
async function readopted(pod: string, instances: IActualLRP[]): Promise<void> {
  await eventually(async () => {
    const { stdout } = await kubectl('-n', system, 'logs', pod);
    const adopted = stdout
      .split('\n')
      .filter((l) => l.includes('instance re-adopted'))
      .map((l) => (JSON.parse(l) as { instanceGuid?: string }).instanceGuid);
    for (const a of instances) expect(adopted).toContain(a.status?.instanceGuid);
  }, 60_000);
}
/** `kubectl port-forward` of `target`'s `port` to a free local port, until stop(). */
async function portForward(target: string, port: number): Promise<{ port: number; stop: () => void }> {
  const child = spawn(inject('clusterKubectl'), [
    `--kubeconfig=${kubeconfig}`,
    '-n',
    system,
    'port-forward',
    target,
    `:${port}`,
  ]);
  // However the test ends (one that times out never reaches its finally).
  onTestFinished(() => void child.kill());
  const local = await outputOf(
    child,
    child.stdout,
    (out) => {
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      return m ? Number(m[1]) : undefined;
    },
    60_000,
    `kubectl port-forward ${target}`,
  );
  return { port: local, stop: () => child.kill() };
}
const leader = async () =>
  (
    await rawRequest<{ spec: { holderIdentity?: string } }>(kc, {
      method: 'GET',
      path: `/apis/coordination.k8s.io/v1/namespaces/${system}/leases/diego-operator-controller`,
    })
  ).spec.holderIdentity ?? '';

const web = (name: string, count: number) => ({
  metadata: { name, namespace: apps },
  spec: {
    processGuid: name,
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances: count,
    memoryMb: 32,
    diskMb: 64,
    ports: [8080],
    setup: { run: { path: '/bin/sh', args: ['-c', 'mkdir -p /www && hostname > /www/index.html'], user: 'root' } },
    action: { run: { path: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], user: 'root' } },
    checkDefinition: { checks: [{ httpCheck: { port: 8080, path: '/' } }] },
  },
});

/** Every instance of `guid` RUNNING and answering on the node's host port, as a router would reach it. */
async function answering(guid: string, count: number, timeoutMs = 180_000): Promise<IActualLRP[]> {
  return eventually(async () => {
    const up = running(await instances(guid));
    expect(up).toHaveLength(count);
    for (const a of up) {
      expect(a.status?.netInfo?.address).toBe(node.ip);
      const res = await fetch(`http://${node.ip}:${hostPort(a)}/`, { signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(200);
    }
    return up;
  }, timeoutMs);
}

let installSeconds = 0;
// The NATS the routers read, on this machine where the pods reach it, and a gorouter stand-in on it
// (test/support/nats-router.ts); the chart's route-emitter Deployment registers routes there.
let nats: NatsServer;
let router: TestRouter;

beforeAll(async () => {
  nats = await new NatsServer(await freePort(), inject('clusterHostIp')).start();
  router = await new TestRouter({ natsUrl: nats.url, registerIntervalSeconds: 2, staleThresholdSeconds: 10 }).start();
  await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: apps } } });
  await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: system } } });
  // The BBS's mutual TLS, as an operator provides it: a Secret with the server's certificate and the clients' CA.
  const ca = await createCA({ commonName: 'bbs-test-ca' });
  const server = await issueCert(ca, {
    commonName: 'bbs',
    ipAddresses: [bbsIp, '127.0.0.1'],
    dnsNames: [`${release}-diego-operator-bbs.${system}.svc`],
    usage: 'server',
  });
  const clientCert = await issueCert(ca, { commonName: 'cloud-controller', usage: 'client' });
  await writeCertFiles(tlsDir, 'ca', ca);
  await writeCertFiles(tlsDir, 'client', clientCert);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  await rawRequest(kc, {
    method: 'POST',
    path: `/api/v1/namespaces/${system}/secrets`,
    body: {
      metadata: { name: 'bbs-tls' },
      data: { 'tls.crt': b64(server.certPem), 'tls.key': b64(server.keyPem), 'ca.crt': b64(ca.certPem) },
    },
  });
  const t0 = Date.now();
  await helm(
    'install',
    release,
    'charts/diego-operator',
    '--namespace',
    system,
    '--create-namespace',
    '--set',
    `image.repository=${repository}`,
    '--set',
    `image.tag=${tag}`,
    '--set',
    'image.pullPolicy=Never',
    '--set',
    `cellAgent.stateDir=${stateDir}`,
    '--set',
    'bbs.enabled=true',
    '--set',
    'bbs.tls.existingSecret=bbs-tls',
    ...(external ? [] : ['--set', `bbs.service.clusterIP=${bbsIp}`]),
    '--set',
    'routeEmitter.enabled=true',
    '--set',
    `routeEmitter.nats.servers=${nats.url}`,
    '--wait',
    '--timeout',
    '8m',
  );
  installSeconds = (Date.now() - t0) / 1000;
  console.log(`helm install → every pod Ready: ${installSeconds.toFixed(1)} s`);
}, 600_000);

let uninstalled = false;
afterAll(async () => {
  if (!uninstalled) await helm('uninstall', release, '--namespace', system, '--wait').catch(() => undefined);
  rmSync(tlsDir, { recursive: true, force: true });
  await router?.stop();
  await nats?.kill();
});

describe('diego-operator installed with helm on a real node', () => {
  it('every pod is Ready under a real kubelet (probes, requests, securityContexts) and the node is a present Cell', async () => {
    const all = await pods(`app.kubernetes.io/instance=${release}`);
    expect(all.length).toBeGreaterThanOrEqual(4); // 2 controllers, the cell agent, the BBS
    for (const p of all) expect(ready(p), p.metadata.name).toBe(true);
    await eventually(async () => {
      const cells = await client.list('Cell', { namespace: system });
      expect(cells.map((c) => c.metadata.name)).toContain(node.name);
    }, 60_000);
    // Its READY column, written by the controller under the chart's RBAC; kubectl diego sees it as cfdot would.
    await eventually(async () => {
      const cell = (await client.list('Cell')).find((c) => c.metadata.name === node.name);
      expect(cell?.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    }, 60_000);
    const states = await run(
      process.execPath,
      [join(repo, 'src/kubectl-diego.ts'), '--kubeconfig', kubeconfig, 'cell-states'],
      { timeout: 120_000 },
    );
    expect(states.stdout).toMatch(new RegExp(`^${node.name}\\s`, 'm'));
  });

  it("runs an app in containers made by the DaemonSet pod, answering on the node's host ports", async () => {
    const t0 = Date.now();
    await client.create('DesiredLRP', web('web', 2));
    await answering('web', 2);
    console.log(
      `apply → 2 instances RUNNING and answering through the DaemonSet: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    // A crash as a user meets it under the chart's RBAC: the converger's Crashed Event says why and when it restarts.
    const [victim] = await answering('web', 2);
    const pids = await containerPids();
    const id = Object.keys(pids).find((k) => k.endsWith(victim!.status!.instanceGuid!));
    expect(id, JSON.stringify(pids)).toBeDefined();
    await nodeSh(`kill -9 ${pids[id!]}`);
    await eventually(async () => {
      const { stdout } = await kubectl('-n', apps, 'describe', 'desiredlrp', 'web');
      expect(stdout.replace(/\s+/g, ' ')).toMatch(
        new RegExp(
          `Warning Crashed .*instance ${victim!.spec.index} on cell ${node.name} crashed: .*crash count 1; restarting now`,
        ),
      );
    }, 120_000);
    await answering('web', 2);
  });

  it('apply → RUNNING, again and again: p50/p99 through the DaemonSet (the app of bench:runc-start)', async () => {
    // The host-process figure's app (bench/runc-start.ts): busybox httpd, no setup action, with its TCP check (polled
    // every 2 s until it passes: Diego's unhealthy_monitoring_interval) and without (RUNNING once the process starts).
    const app = (name: string, check: boolean) => {
      const d = web(name, 1);
      const { setup: _, checkDefinition: __, ...spec } = d.spec;
      return {
        ...d,
        spec: {
          ...spec,
          action: { run: { ...d.spec.action.run, args: ['-f', '-p', '8080', '-h', '/'] } },
          ...(check ? { checkDefinition: { checks: [{ tcpCheck: { port: 8080 } }] } } : {}),
        },
      };
    };
    const samples = { check: [] as number[], none: [] as number[] };
    for (let i = 0; i < 20; i++) {
      const check = i % 2 === 0;
      const name = `lat-${i}`;
      const t0 = Date.now();
      await client.create('DesiredLRP', app(name, check));
      const [up] = await eventually(async () => {
        const r = running(await instances(name));
        expect(r).toHaveLength(1);
        return r;
      }, 120_000);
      samples[check ? 'check' : 'none'].push(Date.now() - t0);
      // It answers HTTP on the node's host port (a directory listing or a 404: any answer).
      const res = await eventually(
        () => fetch(`http://${node.ip}:${hostPort(up!)}/`, { signal: AbortSignal.timeout(10_000) }),
        30_000,
      );
      expect(res.status).toBeGreaterThan(0);
      await client.delete('DesiredLRP', { namespace: apps, name });
    }
    await eventually(async () => {
      const left = await client.list('ActualLRP', { namespace: apps });
      expect(left.filter((a) => a.spec.processGuid.startsWith('lat-'))).toEqual([]);
    }, 120_000);
    const q = (xs: number[], p: number) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return (sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! / 1000).toFixed(2);
    };
    for (const [what, xs] of [
      ['healthy RUNNING (TCP check)', samples.check],
      ['RUNNING (no check)', samples.none],
    ] as const)
      console.log(
        `apply → 1 instance ${what} through the DaemonSet, ${xs.length} runs: p50 ${q(xs, 0.5)} s, p99 ${q(xs, 0.99)} s`,
      );
  });

  it("registers the app's routes with gorouter over NATS from the route-emitter pods; a request by Host answers", async () => {
    const host = 'web.apps.example.test';
    await client.patch(
      'DesiredLRP',
      { namespace: apps, name: 'web' },
      {
        spec: { routes: { 'cf-router': [{ hostnames: [host], port: 8080 }] } },
      },
    );
    const up = await answering('web', 2);
    const want = up.map((a) => `${node.ip}:${hostPort(a)}`).sort();
    await eventually(() => expect(router.endpoints(host)).toEqual(want), 120_000);
    const bodies = new Set<string>();
    await eventually(async () => {
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${router.url}/`, { headers: { host }, timeout: 5_000 }, (r) => {
          let body = '';
          r.on('data', (d: Buffer) => (body += d.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(res.status).toBe(200);
      bodies.add(res.body.trim());
      expect(bodies.size).toBe(2);
    }, 60_000);
    // The Service's EndpointSlices list the same instances (the controller's --endpoint-slices, on by default).
    await eventually(async () => {
      const { items } = await rawRequest<{
        items: { ports: { port: number }[]; endpoints: { addresses: string[] }[] }[];
      }>(kc, {
        method: 'GET',
        path: `/apis/discovery.k8s.io/v1/namespaces/${apps}/endpointslices?labelSelector=${encodeURIComponent('kubernetes.io/service-name=web')}`,
      });
      const listed = items.flatMap((sl) => sl.endpoints.map((e) => `${e.addresses[0]}:${sl.ports[0]?.port}`));
      expect(listed.sort()).toEqual(want);
    }, 60_000);
  });

  it('refuses an invalid manifest through the webhook Service', async () => {
    const bad = web('bad', 1);
    (bad.spec as Record<string, unknown>).action = { serial: { actions: [{ try: { action: { bogus: {} } } }] } };
    const err = await client.create('DesiredLRP', bad).catch((e: unknown) => e);
    const text = `${String(err)} ${JSON.stringify((err as { body?: unknown }).body ?? '')}`;
    expect(text).toContain('validate.diego.dev');
    await expect(client.get('DesiredLRP', apps, 'bad')).rejects.toThrow();
  });

  it("runs Diego's Go BBS client scenario through the BBS Service with mutual TLS", { timeout: 420_000 }, async () => {
    const forward = external ? await portForward(`svc/${release}-diego-operator-bbs`, bbsPort) : undefined;
    const url = forward ? `https://127.0.0.1:${forward.port}` : `https://${bbsIp}:${bbsPort}`;
    // Without a client certificate the BBS refuses the connection.
    const { request } = await import('node:https');
    const ca = readFileSync(join(tlsDir, 'ca.crt'));
    const noCert = await new Promise<string>((resolve) => {
      const req = request(`${url}/v1/ping`, { method: 'POST', ca, timeout: 10_000 }, (res) => {
        res.resume();
        resolve(`answered ${res.statusCode}`);
      });
      req.on('error', (err) => resolve(`refused: ${err.message}`));
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.end();
    });
    expect(noCert).toMatch(/^refused/);
    // The scenario's work asks for cflinuxfs4, which a simulated cell offers (the node's cell runs busybox).
    const cell = await new SimCell(kc, { cellId: 'bbs-sim-cell', stacks: ['cflinuxfs4'] }).start();
    try {
      const tls = ['-tls-ca', join(tlsDir, 'ca.crt'), '-tls-cert', join(tlsDir, 'client.crt')];
      const res = await runBbsClient(
        ['-url', url, '-cell', cell.o.cellId, ...tls, '-tls-key', join(tlsDir, 'client.key')],
        400_000,
      );
      expect({ code: res.code, ok: res.ok }, res.stderr.slice(-4000)).toEqual({ code: 0, ok: API_SCENARIO_STEPS });
    } finally {
      forward?.stop();
      await cell.stop();
    }
  });

  it(
    "serves Diego's Locket API beside the BBS (cfdot locks, presences): Diego's Locket client and lock runner under the chart's RBAC and admission policies",
    { timeout: 300_000 },
    async () => {
      const forward = external ? await portForward(`svc/${release}-diego-operator-bbs`, 8891) : undefined;
      const address = forward ? `127.0.0.1:${forward.port}` : `${bbsIp}:8891`;
      try {
        const res = await runBbsClient(
          [
            '-scenario',
            'locket',
            '-locket',
            address,
            '-cell',
            node.name,
            '-component-lock',
            'diego-operator-controller',
            '-tls-ca',
            join(tlsDir, 'ca.crt'),
            '-tls-cert',
            join(tlsDir, 'client.crt'),
            '-tls-key',
            join(tlsDir, 'client.key'),
          ],
          280_000,
        );
        expect({ code: res.code, last: res.ok.at(-1) }, res.stderr.slice(-4000)).toEqual({
          code: 0,
          last: 'lock-handover',
        });
      } finally {
        forward?.stop();
      }
    },
  );

  it("lets a token bound to the chart's metrics reader scrape the controller's, the BBS's and the route emitter's /metrics; an anonymous scrape is refused", async () => {
    // Prometheus's identity, as serviceMonitor.prometheusServiceAccount would bind it.
    await rawRequest(kc, {
      method: 'POST',
      path: `/api/v1/namespaces/${system}/serviceaccounts`,
      body: { metadata: { name: 'scraper' } },
    });
    await rawRequest(kc, {
      method: 'POST',
      path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      body: {
        metadata: { name: 'diego-test-scraper' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: `${release}-diego-operator-metrics-reader`,
        },
        subjects: [{ kind: 'ServiceAccount', name: 'scraper', namespace: system }],
      },
    });
    const { status } = await rawRequest<{ status: { token: string } }>(kc, {
      method: 'POST',
      path: `/api/v1/namespaces/${system}/serviceaccounts/scraper/token`,
      body: { spec: { expirationSeconds: 600 } },
    });
    const scrape = (ip: string, token?: string) =>
      new Promise<{ code: number; body: string }>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: ip,
            port: 8080,
            path: '/metrics',
            rejectUnauthorized: false, // a self-signed certificate, as the ServiceMonitor's insecureSkipVerify
            headers: token ? { authorization: `Bearer ${token}` } : {},
            timeout: 10_000,
          },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
          },
        );
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', reject);
        req.end();
      });
    const expected: Record<string, string> = {
      controller: 'LRPsDesired',
      bbs: 'ActiveLocks',
      'route-emitter': 'RoutesTotal',
    };
    for (const [component, metric] of Object.entries(expected)) {
      const [pod] = (await pods(`app.kubernetes.io/component=${component}`)).filter(ready);
      const ip = (pod as unknown as { status: { podIP: string } }).status.podIP;
      await eventually(async () => {
        const res = await scrape(ip, status.token);
        expect(res.code, `${component}: ${res.body.slice(0, 200)}`).toBe(200);
        expect(res.body).toMatch(new RegExp(`^${metric}`, 'm'));
      }, 60_000);
      expect((await scrape(ip)).code, component).toBe(401);
    }
  });

  it('keeps placing after the leader controller pod is killed: the other replica takes the Lease', async () => {
    const before = await leader();
    expect(before).not.toBe('');
    const t0 = Date.now();
    await kubectl(
      '-n',
      system,
      'delete',
      'pod',
      before.replace(/-\d+$/, ''),
      '--grace-period=0',
      '--force',
      '--wait=false',
    );
    const after = await eventually(async () => {
      const now = await leader();
      expect(now).not.toBe('');
      expect(now).not.toBe(before);
      return now;
    }, 120_000);
    console.log(`leader failover between pods: ${((Date.now() - t0) / 1000).toFixed(1)} s (${before} → ${after})`);
    // The webhook is served by both replicas behind one Service: until the killed pod leaves its endpoints (the
    // EndpointSlice controller, then kube-proxy), an admission call may still reach it and fail ("connection
    // refused"), as it would for any webhook on Kubernetes. Wait for that, then write; a write refused because the
    // webhook could not be called stored nothing, so it is tried again (only that error, bounded).
    const killed = before.replace(/-\d+$/, '');
    await eventually(async () => {
      const slices = await rawRequest<{
        items: { endpoints?: { targetRef?: { name?: string }; conditions?: { ready?: boolean } }[] }[];
      }>(kc, {
        method: 'GET',
        path: `/apis/discovery.k8s.io/v1/namespaces/${system}/endpointslices?labelSelector=${encodeURIComponent(
          `kubernetes.io/service-name=${release}-diego-operator-webhook`,
        )}`,
      });
      const endpoints = slices.items.flatMap((s) => s.endpoints ?? []);
      expect(endpoints.map((e) => e.targetRef?.name)).not.toContain(killed);
      expect(endpoints.some((e) => e.conditions?.ready)).toBe(true);
    }, 120_000);
    for (const deadline = Date.now() + 60_000; ;) {
      try {
        await client.create('DesiredLRP', web('after-failover', 1));
        break;
      } catch (err) {
        if (!String(err).includes('failed calling webhook') || Date.now() > deadline) throw err;
        console.log(`admission not reachable yet, trying again: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    await answering('after-failover', 1);
  });

  it('adopts the running containers when the cell agent is killed (-9) and the kubelet restarts it', async () => {
    const before = running(await instances('web'));
    expect(before).toHaveLength(2);
    const [agent] = await pods('app.kubernetes.io/component=cell-agent');
    const status = (p: Pod) =>
      (p.status as { containerStatuses?: { containerID?: string; restartCount: number }[] } | undefined)
        ?.containerStatuses?.[0];
    const id = status(agent!)!.containerID!.replace(/^containerd:\/\//, '');
    await ctr('-n', 'k8s.io', 'tasks', 'kill', '--signal', 'SIGKILL', id);
    await eventually(async () => {
      const [now] = await pods('app.kubernetes.io/component=cell-agent');
      expect(now!.metadata.name).toBe(agent!.metadata.name);
      expect(status(now!)!.restartCount).toBeGreaterThan(status(agent!)!.restartCount);
      expect(ready(now!)).toBe(true);
    }, 180_000);
    // The same instances (instance guids, host ports) still run and answer: adopted, not restarted.
    const after = await answering('web', 2);
    expect(after.map((a) => a.status?.instanceGuid).sort()).toEqual(before.map((a) => a.status?.instanceGuid).sort());
    expect(after.map(hostPort).sort()).toEqual(before.map(hostPort).sort());
    await readopted(agent!.metadata.name, before);
  });

  it('adopts the running containers when the cell agent pod is deleted (SIGTERM detaches) and the DaemonSet replaces it', async () => {
    const before = running(await instances('web'));
    expect(before).toHaveLength(2);
    const pids = await containerPids();
    expect(Object.keys(pids).length).toBeGreaterThanOrEqual(2);
    const old = await agentPod();
    await kubectl('-n', system, 'delete', 'pod', old.metadata.name, '--wait=true');
    const now = await eventually(async () => {
      const p = await agentPod();
      expect(p.metadata.name).not.toBe(old.metadata.name);
      expect(ready(p)).toBe(true);
      return p;
    }, 180_000);
    const after = await answering('web', 2);
    expect(after.map((a) => a.status?.instanceGuid).sort()).toEqual(before.map((a) => a.status?.instanceGuid).sort());
    // On the host: the same containers with the same init processes, never restarted; the new agent supervises them.
    expect(await containerPids()).toEqual(pids);
    expect(await alive(Object.values(pids))).toEqual(Object.values(pids).map(() => true));
    await readopted(now.metadata.name, before);
  });

  it('upgrades: CRDs applied first (Helm never upgrades crds/), then helm upgrade rolls the agent with a new value; no app moves', async () => {
    // An older CRD stands in for the installed one: a printer column fewer.
    const columns = async () =>
      (
        await rawRequest<{ spec: { versions: { additionalPrinterColumns?: { name: string }[] }[] } }>(kc, {
          method: 'GET',
          path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/actuallrps.diego.dev',
        })
      ).spec.versions[0]!.additionalPrinterColumns?.map((c) => c.name) ?? [];
    const want = await columns();
    await kubectl(
      'patch',
      'crd',
      'actuallrps.diego.dev',
      '--type=json',
      '-p',
      '[{"op":"remove","path":"/spec/versions/0/additionalPrinterColumns/0"}]',
    );
    expect(await columns()).not.toEqual(want);
    // docs/cluster.md, "Upgrading": the chart's CRDs, server-side, before helm upgrade.
    await kubectl('apply', '--server-side', '--force-conflicts', '-f', join(repo, 'charts/diego-operator/crds'));
    expect(await columns()).toEqual(want);

    const before = running(await instances('web'));
    const pids = await containerPids();
    const old = await agentPod();
    await helm(
      'upgrade',
      release,
      'charts/diego-operator',
      '--namespace',
      system,
      '--reuse-values',
      '--set',
      'cellAgent.capacity.memoryMb=3000',
      '--wait',
      '--timeout',
      '8m',
    );
    await eventually(async () => {
      const cell = await client.get('Cell', undefined, cellObjectName(node.name));
      expect(cell.spec.capacity.memoryMb).toBe(3000);
      const now = await agentPod();
      expect(now.metadata.name).not.toBe(old.metadata.name);
      expect(ready(now)).toBe(true);
    }, 180_000);
    const after = await answering('web', 2);
    expect(after.map((a) => a.status?.instanceGuid).sort()).toEqual(before.map((a) => a.status?.instanceGuid).sort());
    expect(await containerPids()).toEqual(pids);
    await readopted((await agentPod()).metadata.name, before);
  });

  it('evacuates on kubectl drain: the instances move to another cell, then their containers stop; uncordon takes work again', async () => {
    const cell = cellObjectName(node.name);
    const other = await new SimCell(kc, { cellId: 'drain-sim-cell', stacks: ['busybox'] }).start();
    const pids = await containerPids();
    expect(Object.keys(pids).length).toBeGreaterThanOrEqual(2);
    try {
      // Cordon and evict (the operator's own pods stay: on a one-node cluster they have nowhere else to go).
      await kubectl(
        'drain',
        node.name,
        '--ignore-daemonsets',
        `--pod-selector=app.kubernetes.io/instance!=${release}`,
        '--timeout=120s',
      );
      await eventually(async () => expect((await client.get('Cell', undefined, cell)).status?.evacuating).toBe(true));
      await eventually(async () => {
        const now = await instances('web');
        expect(running(now).filter((a) => a.spec.cellId === other.o.cellId)).toHaveLength(2);
        expect(now.filter((a) => a.spec.cellId === node.name)).toEqual([]);
        expect(await containerPids()).toEqual({});
        expect(await alive(Object.values(pids))).toEqual(Object.values(pids).map(() => false));
      }, 180_000);
      await kubectl('uncordon', node.name);
      await eventually(
        async () => expect((await client.get('Cell', undefined, cell)).status?.evacuating).toBeFalsy(),
        120_000,
      );
    } finally {
      await kubectl('uncordon', node.name).catch(() => undefined);
      await other.stop();
    }
    // The other cell gone, its instances come back to the node.
    await answering('web', 2, 240_000);
  });

  it('uninstalls with apps running: the hook deletes them; no container, network namespace, cgroup, mount or finalizer is left; the CRDs stay', async () => {
    const guids = running(await instances('web')).map((a) => a.status!.instanceGuid!);
    expect(guids).toHaveLength(2);
    expect(Object.keys(await containerPids()).length).toBeGreaterThanOrEqual(2);
    await helm('uninstall', release, '--namespace', system, '--wait', '--timeout', '8m');
    uninstalled = true;
    // The pre-delete hook returned only once every ActualLRP was gone, i.e. every container destroyed.
    expect(await client.list('DesiredLRP')).toEqual([]);
    expect(await client.list('ActualLRP')).toEqual([]);
    expect(await client.list('Task')).toEqual([]);
    expect(await containerPids()).toEqual({});
    for (const g of guids) expect(await leftOf(g)).toEqual([]);
    await eventually(async () => expect(await pods(`app.kubernetes.io/instance=${release}`)).toEqual([]), 120_000);
    // Helm keeps CRDs (crds/ is installed once and never deleted).
    const crds = await rawRequest<{ items: { metadata: { name: string } }[] }>(kc, {
      method: 'GET',
      path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    });
    expect(crds.items.map((c) => c.metadata.name)).toEqual(
      expect.arrayContaining(['desiredlrps.diego.dev', 'actuallrps.diego.dev']),
    );
  });
});
