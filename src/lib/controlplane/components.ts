// Starting each component with controller-runtime envtest's flag set and waiting
// until it is ready. Each returns the running process; the caller owns stopping it.
import { join } from 'node:path';
import { type ManagedProcess, startProcess, stopProcess } from './process.ts';
import { failure, httpGet, type TlsOptions, waitForHttp200 } from './readiness.ts';

export interface EtcdPorts {
  client: number;
  peer: number;
}

export async function startEtcd(binDir: string, dir: string, ports: EtcdPorts): Promise<ManagedProcess> {
  const client = `http://127.0.0.1:${ports.client}`;
  const peer = `http://127.0.0.1:${ports.peer}`;
  // prettier-ignore
  const proc = await startProcess('etcd', join(binDir, 'etcd'), [
    '--name=default',
    `--data-dir=${join(dir, 'etcd-data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    // Explicit random peer port so parallel etcds don't fight over :2380.
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
    // Test data is throwaway: skipping fsync makes writes much faster.
    '--unsafe-no-fsync=true',
    `--quota-backend-bytes=${4 * 1024 ** 3}`,
  ], join(dir, 'etcd.log'));
  return readyOrKill(proc, () =>
    waitForHttp200(proc, `${client}/health`, {
      timeoutMs: 30_000,
      hint: 'Check that the etcd binary runs on this machine and that the data directory is writable.',
    }),
  );
}

export interface ApiserverFiles {
  caCert: string;
  servingCert: string;
  servingKey: string;
  /** For a real node: the API server's client certificate to kubelets (logs, exec, port-forward). */
  kubeletClientCert?: string;
  kubeletClientKey?: string;
  saPublicKey: string;
  saPrivateKey: string;
}

export async function startApiserver(
  binDir: string,
  dir: string,
  etcdPort: number,
  port: number,
  files: ApiserverFiles,
  admin: TlsOptions,
  address = '127.0.0.1',
): Promise<ManagedProcess> {
  const server = `https://${address}:${port}`;
  // With a real node (files.kubeletClientCert): pods get ServiceAccount tokens, and the API server talks to kubelets.
  const node = files.kubeletClientCert
    ? [
        `--kubelet-client-certificate=${files.kubeletClientCert}`,
        `--kubelet-client-key=${files.kubeletClientKey}`,
        // Kubelets are authorized by the Node authorizer and confined to their own node by NodeRestriction.
        '--authorization-mode=Node,RBAC',
        '--enable-admission-plugins=NodeRestriction',
        // The node's name resolves nowhere: reach kubelets at their InternalIP.
        '--kubelet-preferred-address-types=InternalIP,Hostname',
      ]
    : // No ServiceAccount controller runs, so there is no "default" SA and Pod creates would fail.
      ['--disable-admission-plugins=ServiceAccount'];
  // prettier-ignore
  const proc = await startProcess('kube-apiserver', join(binDir, 'kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    `--secure-port=${port}`,
    `--bind-address=${address}`,
    // Otherwise it advertises the default-route IP, and fails on hosts without one.
    `--advertise-address=${address}`,
    // Only used for self-signed certs when --tls-cert-file is unset; keep it out of /var/run.
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${files.servingCert}`,
    `--tls-private-key-file=${files.servingKey}`,
    `--client-ca-file=${files.caCert}`,
    `--service-account-issuer=${server}/`,
    `--service-account-key-file=${files.saPublicKey}`,
    `--service-account-signing-key-file=${files.saPrivateKey}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    ...(files.kubeletClientCert ? [] : ['--authorization-mode=RBAC']),
    ...node,
    // APF's config bootstrap only slows startup; a test apiserver needs no fairness.
    '--enable-priority-and-fairness=false',
  ], join(dir, 'kube-apiserver.log'));
  const hint =
    'Common causes: etcd not reachable, a port already in use, or binaries from another Kubernetes version ' +
    '(rebuild with hack/build-control-plane.sh).';
  // As admin (system:masters), so readiness doesn't depend on RBAC bootstrap for anonymous access;
  // /readyz includes the post-start hooks (RBAC roles, CRD informers, ...).
  return readyOrKill(proc, async () => {
    await waitForHttp200(proc, `${server}/readyz`, { tls: admin, timeoutMs: 120_000, hint });
    // Like envtest: clients expect the "default" namespace, created by a controller shortly after.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await httpGet(`${server}/api/v1/namespaces/default`, admin).catch(() => undefined);
      if (res?.status === 200) return;
      if (Date.now() > deadline) {
        throw new Error(await failure(proc, 'namespace "default" was not created within 10s', hint));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  });
}

/** For a real node: kube-controller-manager runs every controller, and signs ServiceAccount tokens with this key. */
export interface ClusterFiles {
  caCert: string;
  saPrivateKey: string;
}

export async function startControllerManager(
  binDir: string,
  dir: string,
  port: number,
  kubeconfigPath: string,
  cluster?: ClusterFiles,
): Promise<ManagedProcess> {
  const controllers = cluster
    ? [
        '--controllers=*',
        `--service-account-private-key-file=${cluster.saPrivateKey}`,
        `--root-ca-file=${cluster.caCert}`,
      ]
    : // Only what the apiserver can't do alone: cascading deletes, namespace teardown, and the type checking of
      // ValidatingAdmissionPolicies (their status.typeChecking, which the chart test reads).
      ['--controllers=garbage-collector-controller,namespace-controller,validatingadmissionpolicy-status-controller'];
  // prettier-ignore
  const proc = await startProcess('kube-controller-manager', join(binDir, 'kube-controller-manager'), [
    ...controllers,
    '--leader-elect=false',
    '--use-service-account-credentials=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'kcm-certs')}`,
    `--kubeconfig=${kubeconfigPath}`,
    `--authentication-kubeconfig=${kubeconfigPath}`,
    `--authorization-kubeconfig=${kubeconfigPath}`,
  ], join(dir, 'kube-controller-manager.log'));
  // Self-signed serving cert, hence insecure; /healthz is always allowed without auth.
  return readyOrKill(proc, () =>
    waitForHttp200(proc, `https://127.0.0.1:${port}/healthz`, {
      tls: { insecure: true },
      timeoutMs: 60_000,
      hint: 'Check that kube-controller-manager is from the same build as kube-apiserver and that the apiserver is still up.',
    }),
  );
}

// A component that never got ready is not handed to the caller, so stop it here.
async function readyOrKill(proc: ManagedProcess, wait: () => Promise<void>): Promise<ManagedProcess> {
  try {
    await wait();
    return proc;
  } catch (err) {
    await stopProcess(proc, 5_000);
    throw err;
  }
}
