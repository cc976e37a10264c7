// The generated schemas must be structural (the apiserver rejects anything else) and self-documenting.
import { describe, expect, it } from 'vitest';
import { buildCRD } from './crd.ts';
import { KINDS } from './kinds.ts';
import type { Schema } from './openapi.ts';

const FORBIDDEN = ['$ref', 'oneOf', 'anyOf', 'allOf', 'not', '$defs', 'definitions'];

function walk(node: Schema, path: string, visit: (node: Schema, path: string) => void): void {
  visit(node, path);
  for (const [name, sub] of Object.entries((node.properties ?? {}) as Record<string, Schema>))
    walk(sub, `${path}.${name}`, visit);
  if (node.items) walk(node.items as Schema, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    walk(node.additionalProperties as Schema, `${path}{}`, visit);
  }
}

function rootSchema(kind: (typeof KINDS)[number]): Schema {
  const crd = buildCRD(kind) as any;
  return crd.spec.versions[0].schema.openAPIV3Schema as Schema;
}

describe.each(KINDS.map((k) => [k.kind, k] as const))('%s schema', (_name, kind) => {
  const root = rootSchema(kind);

  it('is structural: every node has a type (or preserves unknown fields) and nothing forbidden', () => {
    walk(root, kind.kind, (node, path) => {
      for (const key of FORBIDDEN) expect(node, `${path} has ${key}`).not.toHaveProperty(key);
      expect(node.additionalProperties, `${path} has additionalProperties: false`).not.toBe(false);
      if (!node['x-kubernetes-preserve-unknown-fields']) expect(node.type, `${path} has no type`).toBeTruthy();
    });
  });

  it('describes every field under spec and status, for kubectl explain', () => {
    const missing: string[] = [];
    for (const part of ['spec', 'status']) {
      walk((root.properties as Record<string, Schema>)[part]!, part, (node, path) => {
        if (!path.endsWith('[]') && !path.endsWith('{}') && !node.description) missing.push(path);
      });
    }
    expect(missing).toEqual([]);
  });
});

describe('the recursive action tree', () => {
  const spec = (rootSchema(KINDS[0]!).properties as any).spec;

  it('types the top-level action and keeps nested actions as opaque objects', () => {
    const action = spec.properties.action;
    expect(Object.keys(action.properties)).toEqual([
      'download',
      'upload',
      'run',
      'timeout',
      'emitProgress',
      'try',
      'parallel',
      'serial',
      'codependent',
    ]);
    expect(action['x-kubernetes-validations'][0].message).toMatch(/exactly one of/);
    const nested = action.properties.serial.properties.actions.items;
    expect(nested).toMatchObject({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
    expect(action.properties.timeout.properties.action).toMatchObject({ 'x-kubernetes-preserve-unknown-fields': true });
  });
});
