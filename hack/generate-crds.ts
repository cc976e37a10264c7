// Writes config/crd/*.yaml from the zod schemas in src/crds. `--check` only reports stale files (exit 1).
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { renderCRDs } from '../src/crds/render.ts';

const dir = join(import.meta.dirname, '..', 'config', 'crd');
const check = process.argv.includes('--check');
let stale = 0;
mkdirSync(dir, { recursive: true });
for (const [name, text] of renderCRDs()) {
  const path = join(dir, name);
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
