// The Helm chart (charts/diego-operator) as a cluster admin meets it: it lints, it renders with the value
// combinations users pick, the real API server accepts every object it renders (server-side dry run), the cell
// agent gets the host access its runc backend needs, and the RBAC it grants is enough for the controller and a
// cell agent to run an app while acting as the chart's ServiceAccounts (and no more than what the code calls).
import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { buildBbsApp } from '../../src/bbs/app.ts';
import * as m from '../../src/bbs/models.ts';
import { startCellAgent } from '../../src/cmd/cell-agent.ts';
import { LEADER_LEASE_NAME, Manager } from '../../src/controllers/manager.ts';
import type { Rep } from '../../src/cell-agent/rep.ts';
import { createLogger } from '../../src/lib/log.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { SPEC_CHANGED_CONDITION } from '../../src/webhooks/configuration.ts';
import { POLICIES_PATH, renderPolicies } from '../../hack/generate-admission-policies.ts';
import { bbsCaller } from '../support/bbs-call.ts';
import { ACCESS_KINDS, policyWarnings } from '../support/chart.ts';
import { eventually } from '../support/eventually.ts';
import { nodeBoundToken, type NodeBoundToken } from '../support/identities.ts';
import { createNamespace, deleteNamespace, kubectl, testKubeConfig } from '../support/kube.ts';

const run = promisify(execFile);
const repo = path.join(import.meta.dirname, '..', '..');
const chart = path.join(repo, 'charts', 'diego-operator');
const kc = testKubeConfig();
const client = new DiegoClient(kc);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}
interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
  verbs: string[];
}
interface AdmissionPolicy {
  spec: {
    matchConditions: { name: string; expression: string }[];
    variables: { name: string; expression: string }[];
    validations: { expression: string; messageExpression: string }[];
  };
}
interface Container {
  name: string;
  args: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext?: { privileged?: boolean };
  volumeMounts: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[];
  readinessProbe?: { httpGet?: { path: string; port: string; scheme?: string } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
  ports?: { name: string; containerPort: number }[];
}
interface PodSpec {
  hostPID?: boolean;
  hostNetwork?: boolean;
  serviceAccountName: string;
  containers: Container[];
  volumes: { name: string; hostPath?: { path: string } }[];
}

let helm = '';
let ns = '';
const release = `chart-${randomBytes(3).toString('hex')}`;
/** Stub CRDs for the optional integrations (cert-manager, Prometheus Operator) that this test created. */
const stubCRDs: string[] = [];

async function helmRun(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(helm, args, { cwd: repo, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** `helm template` of the chart into the test namespace; returns the YAML and its objects. */
async function render(
  set: string[] = [],
  opts: { crds?: boolean; setString?: string[] } = {},
): Promise<{ yaml: string; objects: K8sObject[] }> {
  const args = ['template', release, chart, '--namespace', ns, ...(opts.crds ? ['--include-crds'] : [])];
  for (const s of set) args.push('--set', s);
  for (const s of opts.setString ?? []) args.push('--set-string', s);
  const res = await helmRun(args);
  expect(res.stderr, `helm template ${set.join(' ')}`).not.toMatch(/Error/);
  expect(res.code).toBe(0);
  const objects = parseAllDocuments(res.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return { yaml: res.stdout, objects };
}

const find = (objects: K8sObject[], kind: string, nameSuffix = ''): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name.endsWith(nameSuffix));
  if (!o) throw new Error(`no ${kind} *${nameSuffix} rendered (have: ${objects.map((x) => x.kind).join(', ')})`);
  return o;
};
const podSpec = (o: K8sObject) => (o.spec as { template: { spec: PodSpec } }).template.spec;
const rulesOf = (o: K8sObject) => (o as unknown as { rules: PolicyRule[] }).rules;
const allows = (rules: PolicyRule[], group: string, resource: string, verb: string) =>
  rules.some(
    (r) => (r.apiGroups ?? []).includes(group) && (r.resources ?? []).includes(resource) && r.verbs.includes(verb),
  );

/** Every object through the real API server's validation and admission, without storing it. */
async function dryRunApply(yaml: string): Promise<void> {
  const res = await kubectl(
    ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '--field-manager=chart-test', '-f', '-'],
    yaml,
  );
  // Warnings (e.g. from a real cluster's Pod Security labels) are not failures.
  expect(res.stderr.split('\n').filter((l) => l && !l.startsWith('Warning:'))).toEqual([]);
  expect(res.code).toBe(0);
}

/** A CRD that accepts any object of a kind this API server does not know (cert-manager, Prometheus Operator). */
async function stubCRD(group: string, kind: string, plural: string): Promise<void> {
  const name = `${plural}.${group}`;
  if ((await kubectl(['get', 'crd', name])).code === 0) return;
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  };
  const res = await kubectl(['create', '-f', '-'], JSON.stringify(crd));
  expect(res.stderr).toBe('');
  stubCRDs.push(name);
  expect((await kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${name}`])).code).toBe(0);
}

beforeAll(async () => {
  // Built once per machine into ~/.cache/diego-operator like the control plane (a couple of minutes the first time).
  const { stdout } = await run(path.join(repo, 'hack', 'build-helm.sh'), { cwd: repo });
  helm = stdout.trim().split('\n').pop()!;
  ns = await createNamespace(kc, 'chart');
}, 600_000);

afterAll(async () => {
  for (const name of stubCRDs) await kubectl(['delete', 'crd', name, '--wait=false']);
  await deleteNamespace(kc, ns);
});

describe('helm chart', () => {
  it('passes helm lint, with default values and with every option turned on', async () => {
    const lint = await helmRun(['lint', chart, '--strict']);
    expect(lint.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(lint.code).toBe(0);
    const all = await helmRun([
      'lint',
      chart,
      '--strict',
      '--set',
      'bbs.enabled=true,bbs.tls.existingSecret=bbs-tls,networkPolicy.enabled=true,serviceMonitor.enabled=true,webhook.certManager.enabled=true,imageCredentials.caConfigMap=platform-ca',
    ]);
    expect(all.code).toBe(0);
  });

  it('renders the CRDs generated by make manifests', async () => {
    const { objects } = await render([], { crds: true });
    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name);
    expect(crds.sort()).toEqual([
      'actuallrps.diego.dev',
      'cells.diego.dev',
      'desiredlrps.diego.dev',
      'tasks.diego.dev',
    ]);
  });

  it('with default values: the API server accepts every object; the webhook certificate is valid for its Service', async () => {
    const { yaml, objects } = await render([], { crds: true });
    await dryRunApply(yaml);

    const controller = find(objects, 'Deployment', '-controller');
    expect((controller.spec as { replicas: number }).replicas).toBe(2);
    const c = podSpec(controller).containers[0]!;
    expect(c.args).toContain(`--system-namespace=${ns}`);
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'webhook', scheme: 'HTTPS' });
    expect(find(objects, 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1 });
    const templated = objects.filter((o) => o.kind !== 'CustomResourceDefinition');
    expect(templated.filter((o) => o.metadata.labels?.['app.kubernetes.io/instance'] !== release)).toEqual([]);

    // The caBundle the API server trusts signed the serving certificate, which names the webhook Service.
    const secret = find(objects, 'Secret', '-webhook-cert') as K8sObject & { data: Record<string, string> };
    const vwc = find(objects, 'ValidatingWebhookConfiguration') as K8sObject & {
      webhooks: { clientConfig: { caBundle: string; service: { name: string; namespace: string; path: string } } }[];
    };
    const cc = vwc.webhooks[0]!.clientConfig;
    expect(cc.caBundle).toBe(secret.data['ca.crt']);
    expect(cc.service).toMatchObject({ namespace: ns, path: '/validate-diego-dev-v1alpha1' });
    const pem = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
    const cert = new X509Certificate(pem(secret.data['tls.crt']!));
    expect(cert.checkIssued(new X509Certificate(pem(cc.caBundle)))).toBe(true);
    expect(cert.subjectAltName).toContain(`DNS:${cc.service.name}.${ns}.svc`);

    // Image credentials: the controller serves them on that TLS server to the cell agents' ServiceAccount; each agent
    // asks through the webhook Service, trusts the CA from a ConfigMap (never the Secret: it has the key) and presents
    // a projected token for the endpoint's own audience, bound to its Pod (so to its node).
    expect(c.args).toEqual(
      expect.arrayContaining([
        `--image-credentials-cell-agent=system:serviceaccount:${ns}:${release}-diego-operator-cell-agent`,
        '--image-credentials-audience=diego-operator-image-credentials',
      ]),
    );
    const agentSpec = podSpec(find(objects, 'DaemonSet', '-cell-agent'));
    expect(agentSpec.containers[0]!.args).toEqual(
      expect.arrayContaining([
        `--image-credentials-url=https://${cc.service.name}.${ns}.svc:443`,
        '--image-credentials-ca=/etc/diego/image-credentials-ca/ca.crt',
        '--image-credentials-token-file=/var/run/secrets/diego.dev/image-credentials/token',
      ]),
    );
    const caMap = find(objects, 'ConfigMap', '-webhook-ca') as K8sObject & { data: Record<string, string> };
    expect(caMap.data['ca.crt']).toBe(pem(cc.caBundle));
    const volumes = agentSpec.volumes as unknown as Record<string, unknown>[];
    expect(volumes).toContainEqual({ name: 'image-credentials-ca', configMap: { name: caMap.metadata.name } });
    expect(volumes).toContainEqual({
      name: 'image-credentials-token',
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: 'diego-operator-image-credentials',
              expirationSeconds: 3600,
              path: 'token',
            },
          },
        ],
      },
    });
    expect(JSON.stringify(volumes)).not.toContain('-webhook-cert');
  });

  it('runs the route emitter when asked: NATS from values, a Secret for credentials, read-only RBAC and its own Lease', async () => {
    expect((await render()).objects.filter((o) => o.metadata.name.endsWith('-route-emitter'))).toEqual([]);
    const { objects } = await render([
      'routeEmitter.enabled=true',
      'routeEmitter.nats.servers=tls://nats.cf.svc:4222',
      'routeEmitter.nats.user=emitter',
      'routeEmitter.nats.existingSecret=nats-creds',
      'routeEmitter.nats.tls.enabled=true',
      'routeEmitter.directInstanceRoutes=true',
    ]);
    const spec = podSpec(find(objects, 'Deployment', '-route-emitter'));
    expect(spec.containers[0]!.args).toEqual(
      expect.arrayContaining([
        'route-emitter',
        '--nats-servers=tls://nats.cf.svc:4222',
        '--nats-user=emitter',
        '--nats-password-file=/etc/diego-operator/nats/password',
        '--nats-tls-ca=/etc/diego-operator/nats/ca.crt',
        '--direct-instance-routes',
      ]),
    );
    const reads = rulesOf(find(objects, 'ClusterRole', '-route-emitter'));
    expect(allows(reads, 'diego.dev', 'actuallrps', 'watch')).toBe(true);
    expect(allows(reads, 'diego.dev', 'desiredlrps', 'list')).toBe(true);
    for (const verb of ['create', 'patch', 'update', 'delete'])
      for (const r of ['actuallrps', 'desiredlrps'])
        expect(allows(reads, 'diego.dev', r, verb), `${r} ${verb}`).toBe(false);
    const lease = find(objects, 'Role', '-route-emitter') as unknown as {
      rules: (PolicyRule & { resourceNames?: string[] })[];
    };
    expect(lease.rules.find((r) => r.verbs.includes('update'))?.resourceNames).toEqual([
      'diego-operator-route-emitter',
    ]);
    const missing = await helmRun(['template', release, chart, '--set', 'routeEmitter.enabled=true']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/routeEmitter\.nats\.servers is required/);
    const noSecret = await helmRun([
      'template',
      release,
      chart,
      '--set',
      'routeEmitter.enabled=true',
      '--set',
      'routeEmitter.nats.servers=nats://n:4222',
      '--set',
      'routeEmitter.nats.user=u',
    ]);
    expect(noSecret.stderr).toMatch(/routeEmitter\.nats\.existingSecret is required/);
    // Cell mode (Diego's local route emitter): no Deployment; each cell agent emits, with the Secret mounted.
    const cell = await render([
      'routeEmitter.enabled=true',
      'routeEmitter.mode=cell',
      'routeEmitter.nats.servers=nats://nats.cf.svc:4222',
      'routeEmitter.nats.user=emitter',
      'routeEmitter.nats.existingSecret=nats-creds',
    ]);
    expect(cell.objects.filter((o) => o.metadata.name.endsWith('-route-emitter'))).toEqual([]);
    const agent = podSpec(find(cell.objects, 'DaemonSet', '-cell-agent'));
    expect(agent.containers[0]!.args).toEqual(
      expect.arrayContaining([
        '--route-emitter-nats-servers=nats://nats.cf.svc:4222',
        '--route-emitter-nats-password-file=/etc/diego-operator/nats/password',
      ]),
    );
    expect(JSON.stringify(agent.volumes)).toContain('nats-creds');
  });

  it('deletes the workloads before helm uninstall removes the operator (a pre-delete hook), unless told not to', async () => {
    const { objects } = await render(['uninstall.timeoutSeconds=120']);
    const job = find(objects, 'Job', '-delete-workloads');
    expect(job.metadata.annotations).toMatchObject({
      'helm.sh/hook': 'pre-delete',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    const spec = podSpec(job);
    expect(spec.containers[0]!.args).toEqual(['delete-workloads', '--timeout=120']);
    expect(spec.containers[0]!.securityContext).toMatchObject({ runAsNonRoot: true });
    // Its RBAC exists before it runs (a lower hook weight) and goes with it.
    for (const kind of ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'])
      expect(find(objects, kind, '-delete-workloads').metadata.annotations?.['helm.sh/hook-weight']).toBe('-10');
    const off = await render(['uninstall.deleteWorkloads=false']);
    expect(off.objects.filter((o) => o.metadata.name.endsWith('-delete-workloads'))).toEqual([]);
  });

  it('runs the cell agent privileged in the host PID and network namespaces with the host mounts runc and CNI need', async () => {
    const { objects } = await render(['cellAgent.stateDir=/data/diego'], {
      setString: ['cellAgent.nodeSelector.diego\\.dev/cell=true'],
    });
    const spec = podSpec(find(objects, 'DaemonSet', '-cell-agent'));
    expect(spec.hostPID).toBe(true);
    expect(spec.hostNetwork).toBe(true);
    expect((spec as unknown as { nodeSelector: Record<string, string> }).nodeSelector).toMatchObject({
      'diego.dev/cell': 'true',
    });
    const agent = spec.containers[0]!;
    expect(agent.securityContext?.privileged).toBe(true);
    expect(agent.args).toEqual(
      expect.arrayContaining(['cell-agent', '--cell-id=$(NODE_NAME)', '--backend=runc', '--state-dir=/data/diego']),
    );
    expect(agent.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    expect(agent.env).toContainEqual({ name: 'DIEGO_ROOTFS_DIR', value: '/data/diego/rootfs' });
    const hostPathOf = (volume: string) => spec.volumes.find((v) => v.name === volume)?.hostPath?.path;
    const mounts = Object.fromEntries(
      agent.volumeMounts.map((m) => [m.mountPath, { host: hostPathOf(m.name), propagation: m.mountPropagation }]),
    );
    expect(agent.args).toContain('--evacuation-timeout=600');
    expect(agent.args).toContain('--ops-address=$(HOST_IP):17008'); // the node's address, not every interface
    expect(agent.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'ops' });
    // SIGTERM detaches by default (the next agent pod adopts the containers): the kubelet's usual grace period.
    const grace = (s: PodSpec) =>
      (s as unknown as { terminationGracePeriodSeconds: number }).terminationGracePeriodSeconds;
    expect(agent.args).toContain('--on-sigterm=detach');
    expect(grace(spec)).toBe(30);
    // With Diego's SIGTERM (evacuate), the kubelet must not kill the agent while it evacuates its instances.
    const evacuating = podSpec(
      find((await render(['cellAgent.onSigterm=evacuate'])).objects, 'DaemonSet', '-cell-agent'),
    );
    expect(evacuating.containers[0]!.args).toContain('--on-sigterm=evacuate');
    expect(grace(evacuating)).toBe(630);
    expect(mounts).toMatchObject({
      '/run/netns': { host: '/run/netns', propagation: 'Bidirectional' },
      '/data/diego': { host: '/data/diego', propagation: 'Bidirectional' },
      '/sys/fs/cgroup': { host: '/sys/fs/cgroup' },
      '/lib/modules': { host: '/lib/modules' },
      '/run/xtables.lock': { host: '/run/xtables.lock' },
    });
  });

  it('with the containerd backend: mounts the node containerd socket; passes placement tags; refuses an unknown backend', async () => {
    const { yaml, objects } = await render(['cellAgent.backend=containerd']);
    await dryRunApply(yaml);
    const spec = podSpec(find(objects, 'DaemonSet', '-cell-agent'));
    const agent = spec.containers[0]!;
    expect(agent.args).toEqual(
      expect.arrayContaining(['--backend=containerd', '--containerd-address=/run/containerd/containerd.sock']),
    );
    const socket = agent.volumeMounts.find((v) => v.mountPath === '/run/containerd/containerd.sock');
    expect(spec.volumes.find((v) => v.name === socket?.name)?.hostPath?.path).toBe('/run/containerd/containerd.sock');

    // placement tags and volume drivers reach the agent; capacity may be Diego's "auto"
    const tagged = await render([
      'cellAgent.placementTags={gpu,ssd}',
      'cellAgent.optionalPlacementTags={fast}',
      'cellAgent.volumeDrivers={nfsv3driver}',
      'cellAgent.capacity.memoryMb=auto',
    ]);
    expect(podSpec(find(tagged.objects, 'DaemonSet', '-cell-agent')).containers[0]!.args).toEqual(
      expect.arrayContaining([
        '--placement-tags=gpu,ssd',
        '--optional-placement-tags=fast',
        '--volume-drivers=nfsv3driver',
        '--memory-mb=auto',
      ]),
    );

    // The executor's side: instance identity from a generated CA Secret (or the user's), the node's address,
    // the cell's default egress rules, trusted certificates and the container proxy.
    const identity = await render([
      'cellAgent.trustedCertsConfigMap=platform-cas',
      'cellAgent.containerProxy.enabled=true',
      'cellAgent.dnsServers={10.96.0.10}',
    ]);
    const agentSpec = podSpec(find(identity.objects, 'DaemonSet', '-cell-agent'));
    const agentArgs = agentSpec.containers[0]!.args ?? [];
    expect(agentArgs).toEqual(
      expect.arrayContaining([
        '--external-ip=$(HOST_IP)',
        '--instance-identity-ca-cert=/etc/diego/instance-identity/tls.crt',
        '--instance-identity-ca-key=/etc/diego/instance-identity/tls.key',
        '--trusted-certs-dir=/etc/diego/trusted-certs',
        '--dns-server=10.96.0.10',
        '--container-proxy',
        '--max-cache-size-mb=10000',
      ]),
    );
    const egress = agentArgs.find((a) => a.startsWith('--default-egress='))!;
    expect(JSON.parse(egress.slice('--default-egress='.length))).toContainEqual({
      protocol: 'udp',
      destinations: ['0.0.0.0/0'],
      ports: [53],
    });
    const caSecret = find(identity.objects, 'Secret', '-instance-identity-ca') as unknown as {
      data: Record<string, string>;
    };
    expect(Buffer.from(caSecret.data['tls.crt']!, 'base64').toString()).toContain('BEGIN CERTIFICATE');
    // Volume drivers found in the node's driver paths, and their mounts visible to the agent (HostToContainer).
    const volumes = await render(['cellAgent.volumeDriverPaths={/var/vcap/data/voldrivers}']);
    const volumeSpec = podSpec(find(volumes.objects, 'DaemonSet', '-cell-agent'));
    expect(volumeSpec.containers[0]!.args).toContain('--volume-driver-paths=/var/vcap/data/voldrivers');
    expect(JSON.stringify(volumeSpec.containers[0])).toContain('"mountPropagation":"HostToContainer"');
    const own = await render(['cellAgent.instanceIdentity.existingSecret=my-ca']);
    expect(own.objects.some((o) => o.kind === 'Secret' && o.metadata.name.endsWith('-instance-identity-ca'))).toBe(
      false,
    );
    const proxyAlone = await helmRun([
      'template',
      release,
      chart,
      '--set',
      'cellAgent.containerProxy.enabled=true',
      '--set',
      'cellAgent.instanceIdentity.enabled=false',
    ]);
    expect(proxyAlone.stderr).toContain('cellAgent.containerProxy needs cellAgent.instanceIdentity.enabled');

    const bad = await helmRun(['template', release, chart, '--set', 'cellAgent.backend=docker']);
    expect(bad.code).not.toBe(0);
    // values.schema.json refuses it before the template's own check would.
    expect(bad.stderr).toContain("at '/cellAgent/backend': value must be one of 'runc', 'containerd', 'process'");
  });

  it('with the BBS, NetworkPolicies, a ServiceMonitor and another system namespace: the API server accepts every object', async () => {
    const system = await createNamespace(kc, 'chart-sys');
    try {
      await stubCRD('monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors');
      const { yaml, objects } = await render([
        'bbs.enabled=true',
        'bbs.tls.existingSecret=bbs-tls',
        'networkPolicy.enabled=true',
        'serviceMonitor.enabled=true',
        `systemNamespace=${system}`,
      ]);
      await dryRunApply(yaml);
      const bbs = podSpec(find(objects, 'Deployment', '-bbs')).containers[0]!;
      expect(bbs.args).toEqual(
        expect.arrayContaining([
          '--tls-cert=/etc/diego-operator/bbs-tls/tls.crt',
          '--tls-key=/etc/diego-operator/bbs-tls/tls.key',
          '--tls-client-ca=/etc/diego-operator/bbs-tls/ca.crt',
          `--system-namespace=${system}`,
          '--health-address=0.0.0.0:8890',
        ]),
      );
      // Probes use the plain-HTTP health listener: the API itself asks every caller for a client certificate.
      expect(bbs.ports).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: 'health', containerPort: 8890 })]),
      );
      expect(bbs.livenessProbe?.httpGet).toMatchObject({ path: '/ping', port: 'health' });
      expect(bbs.readinessProbe?.httpGet).toMatchObject({ path: '/ping', port: 'health' });
      // Leases live in the system namespace; everything else in the release namespace.
      const roles = objects.filter((o) => o.kind === 'Role');
      expect(roles.filter((r) => r.metadata.namespace === system).map((r) => r.metadata.name)).toEqual(
        expect.arrayContaining([`${release}-diego-operator-controller`, `${release}-diego-operator-cell-agent`]),
      );
      expect(objects.filter((o) => o.kind === 'NetworkPolicy')).toHaveLength(2);
      expect(find(objects, 'ServiceMonitor').spec).toMatchObject({ endpoints: [{ port: 'metrics' }] });
    } finally {
      await deleteNamespace(kc, system);
    }
  });

  it('serves the live web view only when asked: its address, its port, and a role to bind its viewers to', async () => {
    const { yaml, objects } = await render([]);
    expect(yaml).not.toContain('--web-address');
    expect(objects.filter((o) => o.metadata.name.endsWith('-web-viewer'))).toEqual([]);
    const on = await render(['controller.webView.enabled=true', 'controller.webView.port=8181']);
    await dryRunApply(on.yaml);
    const c = podSpec(find(on.objects, 'Deployment', '-controller')).containers[0]!;
    expect(c.args).toContain('--web-address=:8181');
    expect(c.ports).toContainEqual({ name: 'web', containerPort: 8181, protocol: 'TCP' });
    const viewer = rulesOf(find(on.objects, 'ClusterRole', '-web-viewer'));
    expect(viewer).toEqual([{ apiGroups: ['diego.dev'], resources: ['desiredlrps'], verbs: ['list'] }]);
  });

  it('with cert-manager, one controller and no cell agent; and with the webhook off: the API server accepts every object', async () => {
    await stubCRD('cert-manager.io', 'Issuer', 'issuers');
    await stubCRD('cert-manager.io', 'Certificate', 'certificates');
    const cm = await render(['webhook.certManager.enabled=true', 'controller.replicas=1', 'cellAgent.enabled=false']);
    await dryRunApply(cm.yaml);
    const vwc = find(cm.objects, 'ValidatingWebhookConfiguration');
    expect(vwc.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBe(
      `${ns}/${release}-diego-operator-webhook-cert`,
    );
    expect(cm.objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['Issuer', 'Certificate']));
    expect(cm.objects.map((o) => o.kind)).not.toContain('DaemonSet');
    expect(cm.objects.map((o) => o.kind)).not.toContain('PodDisruptionBudget');

    const off = await render(['webhook.enabled=false']);
    await dryRunApply(off.yaml);
    expect(off.objects.map((o) => o.kind)).not.toContain('ValidatingWebhookConfiguration');
    expect(podSpec(find(off.objects, 'Deployment', '-controller')).containers[0]!.args).toContain(
      '--webhook-cert-dir=',
    );
    // No TLS server, no image credentials endpoint: the controller reads no Secrets then.
    expect(off.yaml).not.toContain('--image-credentials-');
    expect(allows(rulesOf(find(off.objects, 'ClusterRole', '-controller')), '', 'secrets', 'get')).toBe(false);

    // With cert-manager and cell agents, the agents need the CA without the key: a ConfigMap named by the user.
    const noCa = await helmRun(['template', release, chart, '--set', 'webhook.certManager.enabled=true']);
    expect(noCa.code).not.toBe(0);
    expect(noCa.stderr).toMatch(/imageCredentials\.caConfigMap is required with webhook\.certManager\.enabled/);
    const withCa = await render(['webhook.certManager.enabled=true', 'imageCredentials.caConfigMap=platform-ca']);
    await dryRunApply(withCa.yaml);
    expect(withCa.objects.filter((o) => o.kind === 'ConfigMap')).toEqual([]);
    expect(JSON.stringify(podSpec(find(withCa.objects, 'DaemonSet', '-cell-agent')).volumes)).toContain(
      '{"name":"image-credentials-ca","configMap":{"name":"platform-ca"}}',
    );
  });

  it("serves the cells', the controller's and the BBS's Leases at the leader-election priority level (API Priority and Fairness)", async () => {
    const { yaml, objects } = await render();
    const fs = find(objects, 'FlowSchema', '-leases') as K8sObject & {
      spec: {
        priorityLevelConfiguration: { name: string };
        rules: { subjects: { serviceAccount: { name: string; namespace: string } }[] }[];
      };
    };
    expect(fs.spec.priorityLevelConfiguration.name).toBe('leader-election');
    expect(fs.spec.rules[0]!.subjects.map((x) => x.serviceAccount.name).sort()).toEqual(
      ['bbs', 'cell-agent', 'controller'].map((c) => `${release}-diego-operator-${c}`),
    );
    // The API server validates it (it stores nothing: a dry run). Whether it classifies the requests is not tested
    // here: the test control plane runs with --enable-priority-and-fairness=false.
    await dryRunApply(yaml);
    expect(fs.spec.rules[0]).toMatchObject({
      resourceRules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], namespaces: [ns] }],
    });
    // Everything else the operator's ServiceAccounts ask: a priority level of their own, one flow per user, matched
    // after the Leases' schema and before the built-in service-accounts one (9000).
    const workload = find(objects, 'FlowSchema', '-workload') as K8sObject & {
      spec: { matchingPrecedence: number; priorityLevelConfiguration: { name: string }; distinguisherMethod: object };
    };
    const level = find(objects, 'PriorityLevelConfiguration', '-workload') as K8sObject & {
      spec: { type: string; limited: { nominalConcurrencyShares: number } };
    };
    expect(workload.spec.priorityLevelConfiguration.name).toBe(level.metadata.name);
    expect(workload.spec.distinguisherMethod).toEqual({ type: 'ByUser' });
    expect(workload.spec.matchingPrecedence).toBeGreaterThan(600);
    expect(workload.spec.matchingPrecedence).toBeLessThan(9000);
    expect(level.spec).toMatchObject({ type: 'Limited', limited: { nominalConcurrencyShares: 40 } });
    // Off: no FlowSchema, no priority level.
    const off = (await render(['flowControl.enabled=false'])).objects;
    expect(off.filter((o) => o.kind === 'FlowSchema' || o.kind === 'PriorityLevelConfiguration')).toEqual([]);
  });

  it('refuses wrong values with a message naming each (values.schema.json), on template, install and upgrade', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'controller.replicas=two'], /at '\/controller\/replicas': got string, want integer/],
      [
        ['--set', 'image.pullPolicy=Sometimes'],
        /at '\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/,
      ],
      [['--set', 'controler.replicas=2'], /additional properties 'controler' not allowed/],
      [['--set', 'bbs.port=70000'], /at '\/bbs\/port': maximum: got 70,000, want 65,535/],
      [
        [
          '--set',
          'cellAgent.defaultEgress[0].protocol=smtp',
          '--set',
          'cellAgent.defaultEgress[0].destinations[0]=10.0.0.1',
        ],
        /at '\/cellAgent\/defaultEgress\/0\/protocol'/,
      ],
      [
        ['--set', 'cellAgent.onSigterm=drain'],
        /at '\/cellAgent\/onSigterm': value must be one of 'detach', 'evacuate'/,
      ],
      [['--set', 'uninstall.timeoutSeconds=soon'], /at '\/uninstall\/timeoutSeconds': got string, want integer/],
    ];
    for (const [set, message] of cases) {
      const res = await helmRun(['template', release, chart, ...set]);
      expect(res.code, set.join(' ')).not.toBe(0);
      expect(res.stderr, set.join(' ')).toMatch(message);
    }
    // The same check guards install and upgrade (a dry run: nothing is created).
    const install = await helmRun(['install', release, chart, '--dry-run=client', '--set', 'controller.replicas=two']);
    expect(install.code).not.toBe(0);
    expect(install.stderr).toMatch(/at '\/controller\/replicas': got string, want integer/);
  });

  it('refuses to render the BBS without its TLS Secret, and says how to make one', async () => {
    const res = await helmRun(['template', release, chart, '--set', 'bbs.enabled=true']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/bbs\.tls\.existingSecret is required.*tls\.crt, tls\.key and ca\.crt/);
  });

  it('grants each role what its code calls', async () => {
    const { objects } = await render(['bbs.enabled=true', 'bbs.tls.existingSecret=bbs-tls']);
    const controller = rulesOf(find(objects, 'ClusterRole', '-controller'));
    expect(allows(controller, 'diego.dev', 'actuallrps/status', 'patch')).toBe(true);
    expect(allows(controller, 'diego.dev', 'actuallrps', 'create')).toBe(true);
    expect(allows(controller, 'diego.dev', 'tasks/status', 'patch')).toBe(true);
    expect(allows(controller, 'diego.dev', 'desiredlrps', 'watch')).toBe(true);
    expect(allows(controller, '', 'events', 'create')).toBe(true);
    expect(allows(controller, '', 'events', 'patch')).toBe(true); // a repeat raises the first Event's count
    expect(allows(controller, 'diego.dev', 'desiredlrps', 'delete')).toBe(false);
    expect(allows(controller, 'diego.dev', 'cells/status', 'patch')).toBe(true); // the Ready condition (cell-ready.ts)
    expect(allows(controller, 'diego.dev', 'cells', 'patch')).toBe(false);
    expect(allows(controller, 'diego.dev', 'tasks', 'create')).toBe(false);
    expect(allows(controller, '', 'limitranges', 'list')).toBe(true); // the webhook's namespace caps
    // Services and EndpointSlices of routed DesiredLRPs (endpoint-slices.ts): informers, applies, deletes; a GET of
    // a Service of the name that is not its own.
    for (const verb of ['list', 'watch', 'create', 'patch', 'delete']) {
      expect(allows(controller, '', 'services', verb), `services ${verb}`).toBe(true);
      expect(allows(controller, 'discovery.k8s.io', 'endpointslices', verb), `endpointslices ${verb}`).toBe(true);
    }
    expect(allows(controller, '', 'services', 'get')).toBe(true);
    expect(allows(controller, '', 'services', 'update')).toBe(false);
    expect(allows(controller, 'discovery.k8s.io', 'endpointslices', 'update')).toBe(false);
    const leases = rulesOf(find(objects, 'Role', '-controller'));
    expect(allows(leases, 'coordination.k8s.io', 'leases', 'update')).toBe(true);
    // The BBS checks at start that its namespace exists: that one namespace only.
    const bbs = find(objects, 'ClusterRole', '-bbs') as unknown as {
      rules: (PolicyRule & { resourceNames?: string[] })[];
    };
    expect(bbs.rules.find((r) => r.resources?.includes('namespaces'))).toMatchObject({
      resourceNames: [ns],
      verbs: ['get'],
    });
    // helm uninstall's hook deletes the workloads (and may do nothing else).
    const hook = rulesOf(find(objects, 'ClusterRole', '-delete-workloads'));
    expect(hook).toEqual([
      { apiGroups: ['diego.dev'], resources: ['desiredlrps', 'tasks', 'actuallrps'], verbs: ['get', 'list', 'delete'] },
    ]);
    const agent = rulesOf(find(objects, 'ClusterRole', '-cell-agent'));
    expect(allows(agent, '', 'nodes', 'get')).toBe(true);
    expect(allows(agent, 'diego.dev', 'cells', 'create')).toBe(true);
    expect(allows(agent, 'diego.dev', 'cells/status', 'patch')).toBe(true);
    expect(allows(agent, 'diego.dev', 'desiredlrps', 'create')).toBe(false);
    expect(allows(agent, '', 'events', 'create')).toBe(true);
    expect(allows(agent, '', 'events', 'patch')).toBe(true);
    // The ops endpoints check tokens (TokenReview, SubjectAccessReview); app logs are readable by namespace viewers.
    const opsAuth = rulesOf(find(objects, 'ClusterRole', '-ops-auth'));
    expect(allows(opsAuth, 'authentication.k8s.io', 'tokenreviews', 'create')).toBe(true);
    expect(allows(opsAuth, 'authorization.k8s.io', 'subjectaccessreviews', 'create')).toBe(true);
    // ... for every role that serves /metrics off loopback: the controller, the cell agents, the BBS, and the route
    // emitter when it runs as a Deployment.
    const opsAuthSubjects = async (values: string[]) =>
      (
        find((await render(values)).objects, 'ClusterRoleBinding', '-ops-auth') as unknown as {
          subjects: { name: string }[];
        }
      ).subjects.map((x) => x.name.replace(/^.*-diego-operator-/, ''));
    expect(
      await opsAuthSubjects([
        'bbs.enabled=true',
        'bbs.tls.existingSecret=bbs-tls',
        'routeEmitter.enabled=true',
        'routeEmitter.nats.servers=nats://nats:4222',
      ]),
    ).toEqual(['controller', 'cell-agent', 'bbs', 'route-emitter']);
    expect(await opsAuthSubjects([])).toEqual(['controller', 'cell-agent']);
    // The BBS renews and releases Locket locks (update, delete on Leases) only when it serves Locket.
    const bbsLeases = async (values: string[]) =>
      rulesOf(
        find(
          (await render(['bbs.enabled=true', 'bbs.tls.existingSecret=bbs-tls', ...values])).objects,
          'Role',
          '-bbs-leases',
        ),
      );
    expect(allows(await bbsLeases([]), 'coordination.k8s.io', 'leases', 'delete')).toBe(true);
    const withoutLocket = await bbsLeases(['bbs.locket.enabled=false']);
    expect(allows(withoutLocket, 'coordination.k8s.io', 'leases', 'update')).toBe(false);
    expect(allows(withoutLocket, 'coordination.k8s.io', 'leases', 'delete')).toBe(false);
    const logReader = find(objects, 'ClusterRole', '-log-reader');
    expect(logReader.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-view']).toBe('true');
    expect(allows(rulesOf(logReader), 'diego.dev', 'desiredlrps/log', 'get')).toBe(true);
    // Secrets: the controller gets the image credentials Secret work names (by name, never a list); the BBS keeps
    // Diego's inline credentials in Secrets of its namespace; a cell agent reads none.
    const secretRules = (o: K8sObject) => rulesOf(o).filter((r) => (r.resources ?? []).includes('secrets'));
    expect(secretRules(find(objects, 'ClusterRole', '-controller'))).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
    ]);
    expect(secretRules(find(objects, 'Role', '-bbs'))).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'get', 'update', 'patch', 'delete'] },
    ]);
    for (const role of objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
      if (role.metadata.name.endsWith('-controller') && role.kind === 'ClusterRole') continue;
      if (role.metadata.name.endsWith('-bbs') && role.kind === 'Role') continue;
      expect(secretRules(role), role.metadata.name).toEqual([]);
    }
    // The controller updates one Lease, its leader Lease (create cannot be limited by name: the leases policy is).
    const leaseWrites = leases.filter((r) => r.verbs.includes('update') || r.verbs.includes('patch'));
    expect(leaseWrites).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: [LEADER_LEASE_NAME],
        verbs: ['update', 'patch'],
      },
    ]);
  });

  it('renders the admission policies that confine each role: identities, leader Lease, cell capacity and placement tags', async () => {
    const policy = (objects: K8sObject[], suffix: string) =>
      find(objects, 'ValidatingAdmissionPolicy', suffix) as unknown as AdmissionPolicy;
    const user = (component: string) => `system:serviceaccount:${ns}:${release}-diego-operator-${component}`;
    const rules = (p: AdmissionPolicy) =>
      p.spec.validations.map((v) => /^'\[([a-z.-]+)\]/.exec(v.messageExpression)?.[1]);

    const { objects } = await render();
    const names = (kind: string) =>
      objects.filter((o) => o.kind === kind).map((o) => o.metadata.name.slice(release.length + 1));
    const policies = [
      'diego-operator-cell-agent-actuallrps',
      'diego-operator-cell-agent-cells',
      'diego-operator-cell-agent-tasks',
      'diego-operator-leases',
    ];
    expect(names('ValidatingAdmissionPolicy').sort()).toEqual(policies);
    expect(names('ValidatingAdmissionPolicyBinding').sort()).toEqual(policies);
    for (const b of objects.filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding')) {
      expect(b.spec).toEqual({ policyName: b.metadata.name, validationActions: ['Deny'] });
    }
    // Each cell-agent policy applies to the chart's cell-agent ServiceAccount only; the node comes from its token.
    for (const suffix of ['-cells', '-actuallrps', '-tasks']) {
      const p = policy(objects, suffix);
      expect(p.spec.matchConditions).toEqual([
        { name: 'cell-agent', expression: `request.userInfo.username == '${user('cell-agent')}'` },
      ]);
      expect(p.spec.variables.find((v) => v.name === 'node')?.expression).toContain(
        "request.userInfo.extra['authentication.kubernetes.io/node-name'][0]",
      );
      expect(rules(p)[0]).toBe('cell-agent.bound-token');
    }
    expect(rules(policy(objects, '-cells'))).toEqual([
      'cell-agent.bound-token',
      'cell.own',
      'cell.capacity',
      'cell.available',
      'cell.placement-tags',
    ]);
    const cells = JSON.stringify(policy(objects, '-cells').spec.validations);
    expect(cells).toContain(
      'object.spec.capacity.containers <= 250 && object.spec.capacity.diskMb <= 16384 && object.spec.capacity.memoryMb <= 4096',
    );
    const leasePolicy = policy(objects, '-leases');
    expect(leasePolicy.spec.matchConditions[0]!.expression).toBe(
      `request.userInfo.username in ['${user('controller')}', '${user('cell-agent')}']`,
    );
    expect(leasePolicy.spec.variables).toContainEqual({ name: 'leader', expression: `'${LEADER_LEASE_NAME}'` });
    expect(rules(leasePolicy)).toEqual(['lease.controller', 'cell-agent.bound-token', 'lease.cell-presence']);

    // Capacity: "auto" is not capped unless maxCellCapacity says; explicit caps win. Placement tags as configured.
    const tuned = await render([
      'cellAgent.capacity.memoryMb=auto',
      'admissionPolicies.maxCellCapacity.diskMb=999',
      'cellAgent.placementTags={gpu}',
    ]);
    const tunedCells = policy(tuned.objects, '-cells')
      .spec.validations.map((v) => v.expression)
      .join('\n');
    expect(tunedCells).toContain('object.spec.capacity.containers <= 250 && object.spec.capacity.diskMb <= 999)');
    expect(tunedCells).not.toContain('object.spec.capacity.memoryMb <=');
    expect(tunedCells).toContain('object.spec.?placementTags.orValue([]).all(t, t in ["gpu"])');
    // The BBS joins the leases policy when enabled; without cell agents only the leases policy is left.
    const withBbs = await render(['bbs.enabled=true', 'bbs.tls.existingSecret=bbs-tls']);
    expect(rules(policy(withBbs.objects, '-leases'))).toEqual([
      'lease.controller',
      'lease.bbs',
      'cell-agent.bound-token',
      'lease.cell-presence',
    ]);
    expect(policy(withBbs.objects, '-leases').spec.matchConditions[0]!.expression).toContain(`'${user('bbs')}'`);
    const noAgents = await render(['cellAgent.enabled=false']);
    expect(noAgents.objects.filter((o) => o.kind === 'ValidatingAdmissionPolicy').map((o) => o.metadata.name)).toEqual([
      `${release}-diego-operator-leases`,
    ]);
    expect(rules(policy(noAgents.objects, '-leases'))).toEqual(['lease.controller']);
    const off = await render(['admissionPolicies.enabled=false']);
    expect(off.objects.map((o) => o.kind)).not.toContain('ValidatingAdmissionPolicy');
    expect(off.objects.map((o) => o.kind)).not.toContain('ValidatingAdmissionPolicyBinding');
  });

  it('ships the same admission policies in config/admission for installs without Helm', async () => {
    expect(readFileSync(POLICIES_PATH, 'utf8'), 'stale: run node hack/generate-admission-policies.ts').toBe(
      await renderPolicies(helm),
    );
  });

  it("sends users' writes to the webhook, not the controller's and cell agents' (nor updates that keep the spec)", async () => {
    const vwc = find((await render()).objects, 'ValidatingWebhookConfiguration') as K8sObject & {
      webhooks: { matchConditions: { name: string; expression: string }[] }[];
    };
    const [operator, spec] = vwc.webhooks[0]!.matchConditions;
    const sa = (component: string) => `'system:serviceaccount:${ns}:${release}-diego-operator-${component}'`;
    expect(operator).toEqual({
      name: 'not-the-operator',
      expression: `!(request.userInfo.username in [${sa('controller')}, ${sa('cell-agent')}])`,
    });
    // The same condition as src/webhooks/configuration.ts (startLocalWebhook: make run and the tests).
    const squash = (e: string) => e.replace(/\s+/g, ' ').trim();
    expect({ name: spec!.name, expression: squash(spec!.expression) }).toEqual({
      name: SPEC_CHANGED_CONDITION.name,
      expression: squash(SPEC_CHANGED_CONDITION.expression),
    });
    const noAgents = find(
      (await render(['cellAgent.enabled=false'])).objects,
      'ValidatingWebhookConfiguration',
    ) as typeof vwc;
    expect(noAgents.webhooks[0]!.matchConditions[0]!.expression).toBe(
      `!(request.userInfo.username in [${sa('controller')}])`,
    );
  });
});

describe('helm chart RBAC on the real API server', () => {
  let rbacYaml = '';
  let apps = '';
  let manager: Manager | undefined;
  let rep: Rep | undefined;
  let agentToken: NodeBoundToken | undefined;
  const stateDir = mkdtempSync(path.join(tmpdir(), 'chart-cell-'));
  const cellId = `chart-cell-${randomBytes(3).toString('hex')}`;
  const sa = (component: string) => `system:serviceaccount:${ns}:${release}-diego-operator-${component}`;

  /** The test cluster's kubeconfig, acting as a ServiceAccount (impersonation). */
  function actingAs(user: string): KubeConfig {
    const as = new KubeConfig();
    as.loadFromOptions({
      clusters: kc.clusters,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
      users: kc.users.map((u) => ({ ...u, impersonateUser: user })),
    });
    return as;
  }
  const canI = async (who: string, ...args: string[]) =>
    (await kubectl(['auth', 'can-i', ...args, `--as=${sa(who)}`])).stdout.trim();

  beforeAll(async () => {
    const { objects } = await render(['bbs.enabled=true', 'bbs.tls.existingSecret=bbs-tls']);
    // RBAC and the admission policies that confine each role further.
    const rbac = objects.filter((o) => ACCESS_KINDS.includes(o.kind));
    rbacYaml = rbac.map((o) => JSON.stringify(o)).join('\n---\n');
    const res = await kubectl(['apply', '-f', '-'], rbacYaml);
    expect(res.stderr).toBe('');
    apps = await createNamespace(kc, 'chart-apps');
    // The API server type-checked every expression against the CRDs and Lease schemas: no warnings.
    for (const policy of rbac.filter((o) => o.kind === 'ValidatingAdmissionPolicy')) {
      const checked = await eventually(async () => {
        const w = await policyWarnings(policy.metadata.name);
        expect(w.checked).toBe(true);
        return w;
      }, 30_000);
      expect(checked.warnings, policy.metadata.name).toEqual([]);
    }
    // The cell agent's token as the kubelet of its node gets it: bound to a Pod on that node (the cell id).
    agentToken = await nodeBoundToken(kc, {
      namespace: ns,
      serviceAccount: `${release}-diego-operator-cell-agent`,
      nodeName: cellId,
    });
    // Policies are enforced once the API server's informer has them: until then, this write would pass.
    await eventually(async () => {
      const probe = {
        apiVersion: 'diego.dev/v1alpha1',
        kind: 'Cell',
        metadata: { name: 'probe' },
        spec: { cellId: 'probe', capacity: { memoryMb: 1, diskMb: 1, containers: 1 } },
      };
      const res = await kubectl(['create', `--as=${sa('cell-agent')}`, '-f', '-'], JSON.stringify(probe));
      expect(res.stderr).toContain('[cell-agent.bound-token]');
    }, 30_000);
  });

  afterAll(async () => {
    await manager?.stop();
    await rep?.stop();
    await agentToken?.revoke();
    await client.delete('Cell', { name: cellId });
    await kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], rbacYaml);
    if (apps) await deleteNamespace(kc, apps);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('lets the controller and a cell agent, acting as the chart ServiceAccounts, run an app and remove it', async () => {
    // With the EndpointSlices controller: its Service and slice informers list and watch under the chart's grants.
    manager = new Manager({ kc: actingAs(sa('controller')), log, systemNamespace: ns, endpointSlices: true });
    await manager.start();
    // The admission policies confine the agent to the cell of its node: a real token bound to a Pod on it.
    rep = await startCellAgent(agentToken!.kc, {
      log,
      cellId,
      zone: 'z1',
      memoryMb: 1024,
      diskMb: 1024,
      containers: 10,
      stacks: ['busybox'],
      backend: 'process',
      stateDir,
      systemNamespace: ns,
    });
    await client.create('DesiredLRP', {
      metadata: { name: 'sleeper', namespace: apps },
      spec: {
        processGuid: 'sleeper',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 1,
        memoryMb: 16,
        diskMb: 16,
        action: { run: { path: '/bin/sleep', args: ['600'], user: 'root' } },
      },
    });
    await eventually(async () => {
      const [a] = await client.list('ActualLRP', { namespace: apps });
      expect(a?.status?.state).toBe('RUNNING');
      expect(a?.spec.cellId).toBe(cellId);
    }, 60_000);
    // Why it went there is on the record; an instance that fits nowhere gets the auctioneer's Warning Event.
    const [placed] = await client.list('ActualLRP', { namespace: apps });
    expect(placed?.metadata.annotations?.['diego.dev/placement']).toContain(cellId);
    await client.create('DesiredLRP', {
      metadata: { name: 'too-big', namespace: apps },
      spec: {
        processGuid: 'too-big',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 1,
        memoryMb: 4096,
        diskMb: 16,
        action: { run: { path: '/bin/sleep', args: ['600'], user: 'root' } },
      },
    });
    await eventually(async () => {
      const ev = await kubectl(['get', 'events', '-n', apps, '-o', 'jsonpath={.items[*].reason}']);
      expect(ev.stdout).toContain('PlacementFailed');
    }, 30_000);
    await client.delete('DesiredLRP', { namespace: apps, name: 'too-big' });

    await client.delete('DesiredLRP', { namespace: apps, name: 'sleeper' });
    await eventually(async () => expect(await client.list('ActualLRP', { namespace: apps })).toHaveLength(0), 60_000);
  }, 120_000);

  it('lets the BBS, acting as its ServiceAccount, upsert a domain, list cells, desire an LRP that runs and remove it', async () => {
    // The BBS keeps its LRPs in its one namespace (bbs.namespace; by default the release namespace).
    const app = buildBbsApp({
      client: new DiegoClient(actingAs(sa('bbs'))),
      namespace: ns,
      systemNamespace: ns,
      logger: log,
    });
    const bbs = bbsCaller(() => app);
    try {
      const domain = await bbs(
        '/v1/domains/upsert',
        m.UpsertDomainRequestSchema,
        { domain: 'cf-apps', ttl: 0 },
        m.UpsertDomainResponseSchema,
      );
      expect(domain.error).toBeUndefined();
      const cells = await bbs('/v1/cells/list.r1', m.UpsertDomainRequestSchema, {}, m.CellsResponseSchema);
      expect(cells.error).toBeUndefined();
      expect(cells.cells.map((c) => c.cellId)).toContain(cellId);
      const desired = await bbs(
        '/v1/desired_lrp/desire.r2',
        m.DesireLRPRequestSchema,
        {
          desiredLrp: {
            processGuid: 'bbs-sleeper',
            domain: 'cf-apps',
            rootFs: 'preloaded:busybox',
            instances: 1,
            memoryMb: 16,
            diskMb: 16,
            action: { runAction: { path: '/bin/sleep', args: ['600'], user: 'root' } },
            metricTags: { source_id: { static: 'bbs-sleeper' } },
          },
        },
        m.DesiredLRPLifecycleResponseSchema,
      );
      expect(desired.error).toBeUndefined();
      const actuals = () =>
        bbs(
          '/v1/actual_lrps/list',
          m.ActualLRPsRequestSchema,
          { processGuid: 'bbs-sleeper' },
          m.ActualLRPsResponseSchema,
        );
      await eventually(
        async () => expect((await actuals()).actualLrps.map((a) => a.state)).toEqual(['RUNNING']),
        60_000,
      );
      const removed = await bbs(
        '/v1/desired_lrp/remove',
        m.RemoveDesiredLRPRequestSchema,
        { processGuid: 'bbs-sleeper' },
        m.DesiredLRPLifecycleResponseSchema,
      );
      expect(removed.error).toBeUndefined();
      await eventually(async () => expect((await actuals()).actualLrps).toHaveLength(0), 60_000);
    } finally {
      await app.close();
    }
  }, 150_000);

  it('grants no more than the code needs', async () => {
    // Secrets: the controller only gets them by name (image credentials); a cell agent has no access at all.
    expect(await canI('controller', 'get', 'secrets', '-n', apps)).toBe('yes');
    expect(await canI('controller', 'list', 'secrets', '-n', apps)).toBe('no');
    for (const verb of ['get', 'list', 'watch']) expect(await canI('cell-agent', verb, 'secrets', '-A')).toBe('no');
    expect(await canI('bbs', 'create', 'secrets', '-n', ns)).toBe('yes');
    expect(await canI('bbs', 'list', 'secrets', '-n', ns)).toBe('no');
    expect(await canI('bbs', 'get', 'secrets', '-n', apps)).toBe('no');
    expect(await canI('controller', 'delete', 'desiredlrps.diego.dev', '-n', apps)).toBe('no');
    expect(await canI('controller', 'create', 'leases.coordination.k8s.io', '-n', apps)).toBe('no');
    // Services and EndpointSlices: watched everywhere (its own, by label), written by apply and delete only.
    expect(await canI('controller', 'watch', 'endpointslices.discovery.k8s.io', '-A')).toBe('yes');
    expect(await canI('controller', 'watch', 'services', '-A')).toBe('yes');
    expect(await canI('controller', 'update', 'endpointslices.discovery.k8s.io', '-n', apps)).toBe('no');
    expect(await canI('controller', 'deletecollection', 'services', '-n', apps)).toBe('no');
    expect(await canI('cell-agent', 'create', 'desiredlrps.diego.dev', '-n', apps)).toBe('no');
    expect(await canI('cell-agent', 'delete', 'tasks.diego.dev', '-n', apps)).toBe('no');
    expect(await canI('cell-agent', 'watch', 'nodes')).toBe('yes');
    // The BBS works in its one namespace (here the release namespace), and reads Cells and Leases.
    expect(await canI('bbs', 'create', 'desiredlrps.diego.dev', '-n', ns)).toBe('yes');
    expect(await canI('bbs', 'patch', 'tasks.diego.dev', '--subresource=status', '-n', ns)).toBe('yes');
    expect(await canI('bbs', 'create', 'desiredlrps.diego.dev', '-n', apps)).toBe('no');
    expect(await canI('bbs', 'list', 'cells.diego.dev')).toBe('yes');
    expect(await canI('bbs', 'create', 'leases.coordination.k8s.io', '-n', ns)).toBe('yes');
    // The controller updates its leader Lease only (the cells' presence Leases are the cells').
    expect(await canI('controller', 'update', `leases.coordination.k8s.io/${LEADER_LEASE_NAME}`, '-n', ns)).toBe('yes');
    expect(await canI('controller', 'update', `leases.coordination.k8s.io/${cellId}`, '-n', ns)).toBe('no');
    expect(await canI('controller', 'patch', `leases.coordination.k8s.io/${cellId}`, '-n', ns)).toBe('no');
  });

  it("keeps scheduling while the chart's webhook is down; a user's create is refused with the outage error", async () => {
    // Desired before the outage, placed during it: the controller is stopped meanwhile.
    await manager?.stop();
    manager = undefined;
    await client.create('DesiredLRP', {
      metadata: { name: 'during-outage', namespace: apps },
      spec: {
        processGuid: 'during-outage',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 1,
        memoryMb: 16,
        diskMb: 16,
        action: { run: { path: '/bin/sleep', args: ['600'], user: 'root' } },
      },
    });
    const taskSpec = (taskGuid: string) => ({
      taskGuid,
      domain: 'cf-tasks',
      rootFs: 'preloaded:busybox',
      memoryMb: 16,
      action: { run: { path: '/bin/true', user: 'root' } },
    });
    await client.create('Task', {
      metadata: { name: 'during-outage', namespace: apps },
      spec: taskSpec('during-outage'),
    });
    // The outage: the chart's webhook registration (its Service has no endpoints here), for the apps namespace only.
    const vwc = find((await render()).objects, 'ValidatingWebhookConfiguration') as K8sObject & { webhooks: object[] };
    const scoped = {
      ...vwc,
      webhooks: vwc.webhooks.map((w) => ({
        ...w,
        timeoutSeconds: 3,
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': apps } },
      })),
    };
    expect((await kubectl(['apply', '-f', '-'], JSON.stringify(scoped))).stderr).toBe('');
    try {
      const userCreate = () =>
        client.create('Task', { metadata: { name: 'refused', namespace: apps }, spec: taskSpec('refused') }).then(
          () => 'accepted',
          (e: unknown) => String((e as Error).message),
        );
      await eventually(
        async () => expect(await userCreate()).toMatch(/failed calling webhook "validate\.diego\.dev"/),
        30_000,
      );
      // The controller (its ServiceAccount) places the task and the instance; the agent claims, runs, reports.
      manager = new Manager({ kc: actingAs(sa('controller')), log, systemNamespace: ns });
      await manager.start();
      await eventually(async () => {
        const a = (await client.list('ActualLRP', { namespace: apps })).find(
          (x) => x.spec.processGuid === 'during-outage',
        );
        expect(a?.status?.state).toBe('RUNNING');
        expect(a?.spec.cellId).toBe(cellId);
      }, 60_000);
      await eventually(async () => {
        const t = await client.get('Task', apps, 'during-outage');
        expect(t.status).toMatchObject({ state: 'Completed', failed: false });
      }, 60_000);
    } finally {
      await kubectl(['delete', 'validatingwebhookconfiguration', vwc.metadata.name, '--ignore-not-found']);
    }
  }, 150_000);
});
