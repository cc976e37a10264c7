// Helpers the integration suites share: a client for the test cluster, kubectl as a user runs it, and
// namespaces per test file.
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { kubeConfigFromString } from '../../src/lib/kube.ts';

export function testKubeConfig(): KubeConfig {
  return kubeConfigFromString(inject('kubeconfig'));
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real kubectl against the test cluster; never throws on a non-zero exit, fails once 120 s have passed. */
export function kubectl(args: string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      inject('kubectl'),
      ['--kubeconfig', inject('kubeconfigPath'), ...args],
      // kubectl waits on the API server without a bound of its own.
      { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err?.killed && typeof err.code !== 'string') {
          return reject(new Error(`kubectl ${args.join(' ')} still running 120000 ms later: ${stderr}`));
        }
        if (err && typeof err.code !== 'number') return reject(new Error(`cannot run kubectl: ${err.message}`));
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

/** Creates a uniquely named namespace and returns its name. */
export async function createNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

export async function deleteNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name })
    .catch(() => undefined);
}

export function customObjects(kc: KubeConfig): CustomObjectsApi {
  return kc.makeApiClient(CustomObjectsApi);
}
