// The Helm chart as the integration suites install pieces of it: helm (built once per machine by
// hack/build-helm.sh), `helm template` into objects, and applying some of them to the test cluster.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { kubectl } from './kube.ts';

const run = promisify(execFile);
export const REPO = path.join(import.meta.dirname, '..', '..');
export const CHART = path.join(REPO, 'charts', 'diego-operator');

export interface ChartObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The helm binary (built into ~/.cache/diego-operator on first use: a couple of minutes). */
export async function helmBinary(): Promise<string> {
  const { stdout } = await run(path.join(REPO, 'hack', 'build-helm.sh'), { cwd: REPO });
  return stdout.trim().split('\n').pop()!;
}

/** `helm template <release> <chart> -n <namespace> --set ...`, as objects. */
export async function renderChart(
  helm: string,
  release: string,
  namespace: string,
  set: string[] = [],
): Promise<ChartObject[]> {
  const args = ['template', release, CHART, '--namespace', namespace];
  for (const s of set) args.push('--set', s);
  const { stdout } = await run(helm, args, { cwd: REPO, maxBuffer: 64 * 1024 * 1024 });
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as ChartObject | null)
    .filter((o): o is ChartObject => o !== null);
}

/** The kinds that say who may do what: ServiceAccounts, RBAC and the admission policies. */
export const ACCESS_KINDS = [
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
];

/** Applies objects (kubectl apply); returns the YAML stream, for deleting them again. */
export async function applyObjects(objects: ChartObject[]): Promise<string> {
  const yaml = objects.map((o) => JSON.stringify(o)).join('\n---\n');
  const res = await kubectl(['apply', '-f', '-'], yaml);
  if (res.code !== 0) throw new Error(`kubectl apply failed: ${res.stderr}`);
  return yaml;
}

export async function deleteObjects(yaml: string): Promise<void> {
  if (yaml) await kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], yaml);
}

/** Type-checking warnings the API server found in a ValidatingAdmissionPolicy (once it has checked it). */
export async function policyWarnings(name: string): Promise<{ checked: boolean; warnings: string[] }> {
  const res = await kubectl(['get', 'validatingadmissionpolicy', name, '-o', 'json']);
  if (res.code !== 0) throw new Error(res.stderr);
  const policy = JSON.parse(res.stdout) as {
    metadata: { generation: number };
    status?: { observedGeneration?: number; typeChecking?: { expressionWarnings?: { warning: string }[] } };
  };
  return {
    checked: policy.status?.observedGeneration === policy.metadata.generation,
    warnings: (policy.status?.typeChecking?.expressionWarnings ?? []).map((w) => w.warning),
  };
}
