// src/bbs/gen is generated from src/bbs/proto; this fails when someone changed one without the other.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateProto, readTree } from '../../hack/generate-proto.ts';

const genDir = join(import.meta.dirname, 'gen');
const protoDir = join(import.meta.dirname, 'proto');

describe('src/bbs/gen', () => {
  let tmp = '';
  let fresh = new Map<string, string>();

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bbs-gen-test-'));
    generateProto(tmp);
    fresh = readTree(tmp);
  }, 60_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('has one generated file per .proto file', () => {
    const protos = readdirSync(protoDir)
      .filter((n) => n.endsWith('.proto'))
      .map((n) => n.replace(/\.proto$/, '_pb.ts'));
    expect([...fresh.keys()].sort()).toEqual(protos.sort());
  });

  it('holds exactly the generated files', () => {
    expect(readdirSync(genDir).sort()).toEqual([...fresh.keys()].sort());
  });

  it('is up to date with src/bbs/proto (run `npm run generate:proto` if not)', () => {
    const stale = [...fresh]
      .filter(([name, text]) => readFileSync(join(genDir, name), 'utf8') !== text)
      .map(([n]) => n);
    expect(stale).toEqual([]);
  });

  it('has no TypeScript enums (erasableSyntaxOnly, Node type stripping)', () => {
    const withEnums = [...fresh].filter(([, text]) => /^export (declare )?(const )?enum /m.test(text)).map(([n]) => n);
    expect(withEnums).toEqual([]);
  });

  it('is fully re-exported and registered by src/bbs/models.ts', () => {
    const index = readFileSync(join(import.meta.dirname, 'models.ts'), 'utf8');
    for (const name of fresh.keys()) {
      expect(index).toContain(`export * from './gen/${name}';`);
      expect(index).toContain(`  file_${name.replace(/_pb\.ts$/, '')},`);
    }
  });
});
