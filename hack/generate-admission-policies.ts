// Writes config/admission/policies.yaml, the chart's ValidatingAdmissionPolicies (templates/admission-policies.yaml)
// for a plain (non-Helm) install: rendered with the default values for release "diego-operator" in namespace
// "diego-system" (the ServiceAccounts system:serviceaccount:diego-system:diego-operator-{controller,cell-agent,bbs}),
// the BBS included, without Helm's own labels. `--check` only reports a stale file (exit 1). Needs helm
// (hack/build-helm.sh builds it). test/integration/chart.test.ts checks the file against the chart too.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { format, resolveConfig } from 'prettier';

const root = join(import.meta.dirname, '..');
export const POLICIES_PATH = join(root, 'config', 'admission', 'policies.yaml');

const HEADER = `# ValidatingAdmissionPolicies of diego-operator for an install without Helm (Kubernetes >= 1.30): a cell agent
# writes only its node's Cell and presence Lease and the work placed on its cell; the controller writes only its
# leader Lease, the BBS only its domain Leases (docs/security.md, "Node vs cluster").
#
# Generated from charts/diego-operator/templates/admission-policies.yaml by hack/generate-admission-policies.ts
# (default values, release "diego-operator" in namespace "diego-system", BBS enabled): do not edit. The policies
# name the ServiceAccounts system:serviceaccount:diego-system:diego-operator-{controller,cell-agent,bbs}, cap a
# Cell at the chart's default capacity (4096 MB, 16384 MB disk, 250 containers) with no placement tags: for other
# names or numbers, render the chart with your values instead:
#   helm template <release> charts/diego-operator -n <namespace> --show-only templates/admission-policies.yaml

`;

/** The file's text from the chart, rendered with `helm`. */
export async function renderPolicies(helm: string): Promise<string> {
  const rendered = execFileSync(
    helm,
    [
      'template',
      'diego-operator',
      join(root, 'charts', 'diego-operator'),
      '--namespace',
      'diego-system',
      '--set',
      'bbs.enabled=true,bbs.tls.existingSecret=bbs-tls',
      '--show-only',
      'templates/admission-policies.yaml',
    ],
    { encoding: 'utf8' },
  );
  const body = rendered
    .split('\n')
    .filter((l) => !/^# Source: /.test(l) && !/^\s+(helm\.sh\/chart|app\.kubernetes\.io\/managed-by): /.test(l))
    .join('\n')
    .replace(/^---\n/, '');
  const options = (await resolveConfig(POLICIES_PATH)) ?? {};
  return format(HEADER + body, { ...options, parser: 'yaml' });
}

function helmBinary(): string {
  const out = execFileSync(join(root, 'hack', 'build-helm.sh'), { encoding: 'utf8' });
  return out.trim().split('\n').pop()!;
}

if (import.meta.main) {
  const text = await renderPolicies(helmBinary());
  const current = existsSync(POLICIES_PATH) ? readFileSync(POLICIES_PATH, 'utf8') : '';
  if (current !== text) {
    if (process.argv.includes('--check')) {
      console.error(`stale: ${POLICIES_PATH} (run node hack/generate-admission-policies.ts)`);
      process.exit(1);
    }
    mkdirSync(dirname(POLICIES_PATH), { recursive: true });
    writeFileSync(POLICIES_PATH, text);
    console.log(`wrote ${POLICIES_PATH}`);
  }
}
