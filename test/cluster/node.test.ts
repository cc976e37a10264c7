// The node itself, before anything of ours runs on it: a pod is scheduled by kube-scheduler, started by the kubelet
// through containerd and runc, gets an address from the node's pod range on the CNI bridge, is reachable from this
// host (as the API server reaches webhooks) directly and through a ClusterIP Service (kube-proxy), and reaches the
// API server through the `kubernetes` Service (as in-cluster clients do); `kubectl exec` goes API server → kubelet.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubeConfigFromString, rawRequest } from '../../src/lib/kube.ts';
import { eventually } from '../support/eventually.ts';

const run = promisify(execFile);
const kc = kubeConfigFromString(inject('clusterKubeconfig'));
const node = inject('clusterNode');
const { busybox } = inject('clusterImages');
const kubectl = (...args: string[]) =>
  run(inject('clusterKubectl'), [`--kubeconfig=${inject('clusterKubeconfigPath')}`, ...args], { timeout: 60_000 });
const ns = `node-${Date.now().toString(36)}`;

interface Pod {
  status?: { phase?: string; podIP?: string; hostIP?: string };
  spec?: { nodeName?: string };
}

beforeAll(async () => {
  await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
});
afterAll(async () => {
  await rawRequest(kc, { method: 'DELETE', path: `/api/v1/namespaces/${ns}` }).catch(() => undefined);
});

describe('the node', () => {
  it('runs a pod reachable from this host, directly and through a Service, that reaches the API server', async () => {
    // The default ServiceAccount comes from kube-controller-manager; pods wait for it.
    await eventually(
      () => rawRequest(kc, { method: 'GET', path: `/api/v1/namespaces/${ns}/serviceaccounts/default` }),
      60_000,
    );
    await rawRequest(kc, {
      method: 'POST',
      path: `/api/v1/namespaces/${ns}/pods`,
      body: {
        metadata: { name: 'web', labels: { app: 'web' } },
        spec: {
          containers: [
            {
              name: 'web',
              image: busybox,
              imagePullPolicy: 'Never',
              command: [
                '/bin/sh',
                '-c',
                'mkdir -p /www && echo "hello from $HOSTNAME" > /www/index.html && exec httpd -f -p 8080 -h /www',
              ],
              ports: [{ containerPort: 8080 }],
            },
          ],
        },
      },
    });
    await rawRequest(kc, {
      method: 'POST',
      path: `/api/v1/namespaces/${ns}/services`,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    const pod = await eventually(async () => {
      const p = await rawRequest<Pod>(kc, { method: 'GET', path: `/api/v1/namespaces/${ns}/pods/web` });
      expect(p.status?.phase).toBe('Running');
      return p;
    }, 120_000);
    expect(pod.spec?.nodeName).toBe(node.name);
    expect(pod.status?.hostIP).toBe(node.ip);
    const prefix = node.podCidr.split('.').slice(0, 3).join('.') + '.';
    expect(pod.status?.podIP?.startsWith(prefix)).toBe(true);

    // This host → the pod, directly.
    await eventually(async () => {
      const res = await fetch(`http://${pod.status!.podIP}:8080/`, { signal: AbortSignal.timeout(5_000) });
      expect(await res.text()).toBe('hello from web\n');
    });
    // This host → the Service's ClusterIP (kube-proxy's rules in the node's namespace).
    const svc = await rawRequest<{ spec: { clusterIP: string } }>(kc, {
      method: 'GET',
      path: `/api/v1/namespaces/${ns}/services/web`,
    });
    await eventually(async () => {
      const res = await fetch(`http://${svc.spec.clusterIP}/`, { signal: AbortSignal.timeout(5_000) });
      expect(await res.text()).toBe('hello from web\n');
    }, 60_000);
    // The pod → the API server through the `kubernetes` Service, by `kubectl exec` (API server → kubelet → CRI).
    await eventually(async () => {
      // Plain HTTP to the API server's TLS port: Go's TLS server answers that with a telling 400.
      const { stdout } = await kubectl(
        '-n',
        ns,
        'exec',
        'web',
        '--',
        'sh',
        '-c',
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 10.0.0.1 443",
      );
      expect(stdout).toContain('Client sent an HTTP request to an HTTPS server');
    }, 60_000);
  });
});
