// config/crd is generated from the zod schemas; this fails when someone changed one without the other.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCRDs } from './render.ts';

const dir = join(import.meta.dirname, '..', '..', 'config', 'crd');

describe('config/crd', () => {
  const rendered = renderCRDs();

  it('holds exactly the generated files', () => {
    expect(readdirSync(dir).sort()).toEqual([...rendered.keys()].sort());
  });

  it.each([...rendered.keys()])('%s is up to date (run `make manifests` if not)', (name) => {
    expect(readFileSync(join(dir, name), 'utf8')).toBe(rendered.get(name));
  });
});
