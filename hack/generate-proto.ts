// Generates the TypeScript codec for Diego's BBS models: src/bbs/proto/*.proto -> src/bbs/gen/*_pb.ts,
// with buf (npm @bufbuild/buf) running protoc-gen-es (npm @bufbuild/protoc-gen-es).
//
//   node hack/generate-proto.ts            rewrite src/bbs/gen
//   node hack/generate-proto.ts --out DIR  write into DIR instead (used by the staleness test)
//   node hack/generate-proto.ts --check    exit 1 when src/bbs/gen differs from a fresh generation
//
// Plugin options: target=ts + import_extension=ts give .ts sources with `.ts` relative imports, like the
// rest of the repo; erasable_syntax=true emits enums as `as const` objects plus union types instead of
// TypeScript `enum`s, so the output satisfies erasableSyntaxOnly and runs under Node's type stripping.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..');
const protoDir = join(root, 'src', 'bbs', 'proto');
const genDir = join(root, 'src', 'bbs', 'gen');

/** Runs `buf generate` over src/bbs/proto into `outDir`, replacing the `*_pb.ts` files there (and only those). */
export function generateProto(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  for (const name of readdirSync(outDir)) if (name.endsWith('_pb.ts')) rmSync(join(outDir, name));
  const template = {
    version: 'v2',
    plugins: [
      {
        // Run the plugin with this very Node, whatever `node` on PATH is.
        local: [process.execPath, join(root, 'node_modules', '@bufbuild', 'protoc-gen-es', 'bin', 'protoc-gen-es')],
        out: outDir,
        opt: ['target=ts', 'import_extension=ts', 'erasable_syntax=true'],
        include_imports: false,
      },
    ],
  };
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules', '@bufbuild', 'buf', 'bin', 'buf'),
      'generate',
      protoDir,
      '--template',
      JSON.stringify(template),
    ],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
  );
}

/** File name -> content of every file in `dir` (flat: protoc-gen-es mirrors our flat proto layout). */
export function readTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(dir).sort()) files.set(name, readFileSync(join(dir, name), 'utf8'));
  return files;
}

function main(): number {
  const { values } = parseArgs({ options: { out: { type: 'string' }, check: { type: 'boolean' } } });
  if (!values.check) {
    const out = resolve(values.out ?? genDir);
    generateProto(out);
    console.log(`wrote ${readdirSync(out).length} files to ${out}`);
    return 0;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'bbs-gen-'));
  try {
    generateProto(tmp);
    const fresh = readTree(tmp);
    const committed = readTree(genDir);
    const stale = [...new Set([...fresh.keys(), ...committed.keys()])].filter((n) => fresh.get(n) !== committed.get(n));
    for (const name of stale) console.error(`stale: src/bbs/gen/${name} (run npm run generate:proto)`);
    return stale.length ? 1 : 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.main) process.exit(main());
