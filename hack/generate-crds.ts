// Writes config/crd/*.yaml and the Helm chart's copies (charts/diego-operator/crds) from the zod schemas in
// src/crds, and the chart's values.schema.json from hack/chart-values.ts, so none can go stale. `--check` only
// reports stale files (exit 1).
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { renderCRDs } from '../src/crds/render.ts';
import { valuesJsonSchema } from './chart-values.ts';

const root = join(import.meta.dirname, '..');
const dirs = [join(root, 'config', 'crd'), join(root, 'charts', 'diego-operator', 'crds')];
const check = process.argv.includes('--check');
let stale = 0;
for (const dir of dirs) mkdirSync(dir, { recursive: true });
const files = [
  ...[...renderCRDs()].flatMap(([name, t]) => dirs.map((d) => [join(d, name), t] as const)),
  [join(root, 'charts', 'diego-operator', 'values.schema.json'), valuesJsonSchema()] as const,
];
for (const [path, text] of files) {
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '';
  if (current === text) continue;
  if (check) {
    console.error(`stale: ${path} (run make manifests)`);
    stale++;
  } else {
    writeFileSync(path, text);
    console.log(`wrote ${path}`);
  }
}
process.exit(stale ? 1 : 0);
