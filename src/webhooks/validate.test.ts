import { describe, expect, it } from 'vitest';
import { MAX_ACTION_DEPTH } from '../crds/actions.ts';
import { review } from './admission.ts';
import { formatPath, validateSpec } from './validate.ts';

const run = { run: { path: '/bin/true', user: 'root' } };
const lrp = (extra: Record<string, unknown> = {}) => ({
  processGuid: 'web',
  domain: 'cf-apps',
  rootFs: 'preloaded:busybox',
  action: run,
  ...extra,
});

describe('validateSpec', () => {
  it('accepts a valid DesiredLRP and Task', () => {
    expect(validateSpec('DesiredLRP', lrp())).toEqual([]);
    expect(validateSpec('Task', { taskGuid: 't', domain: 'd', rootFs: 'docker:///busybox', action: run })).toEqual([]);
  });

  it('names the exact field of a bad action deep in the tree', () => {
    const action = {
      serial: { actions: [run, { try: { action: { parallel: { actions: [run, { run: { user: 'root' } }] } } } }] },
    };
    expect(validateSpec('DesiredLRP', lrp({ action }))).toEqual([
      { field: 'spec.action.serial.actions[1].try.action.parallel.actions[1].run.path', message: expect.any(String) },
    ]);
  });

  it('names an unknown action type', () => {
    const errors = validateSpec('DesiredLRP', lrp({ setup: { try: { action: { shell: {} } } } }));
    expect(errors.map((e) => e.field)).toContain('spec.setup.try.action.shell');
    expect(errors.find((e) => e.field === 'spec.setup.try.action.shell')?.message).toBe('unknown field "shell"');
  });

  it('requires exactly one action type at every level', () => {
    const errors = validateSpec(
      'DesiredLRP',
      lrp({ action: { try: { action: { ...run, download: { from: 'http://a/b', to: '/x', user: 'root' } } } } }),
    );
    expect(errors).toEqual([
      { field: 'spec.action.try.action', message: expect.stringContaining('found download and run') },
    ]);
  });

  it('counts the annotation in bytes, as Diego does', () => {
    expect(validateSpec('DesiredLRP', lrp({ annotation: 'a'.repeat(10240) }))).toEqual([]);
    // 5000 two-byte characters: within 10240 characters but over 10240 bytes.
    expect(validateSpec('DesiredLRP', lrp({ annotation: 'é'.repeat(5121) })).map((e) => e.field)).toEqual([
      'spec.annotation',
    ]);
  });

  it('limits all route values together to 128 KiB', () => {
    const routes = {
      'cf-router': [{ hostnames: ['x'.repeat(70 * 1024)] }],
      'tcp-router': [{ external_port: 'y'.repeat(70 * 1024) }],
    };
    expect(validateSpec('DesiredLRP', lrp({ routes })).map((e) => e.field)).toEqual(['spec.routes']);
  });

  it('refuses a tree deeper than the limit without recursing into it', () => {
    let action: Record<string, unknown> = run;
    for (let i = 0; i < 10_000; i++) action = { try: { action } };
    const errors = validateSpec('DesiredLRP', lrp({ action }));
    expect(errors).toEqual([
      { field: 'spec.action', message: `action tree is deeper than ${MAX_ACTION_DEPTH} levels` },
    ]);
  });
});

describe('formatPath', () => {
  it('writes kubectl-style paths', () => {
    expect(formatPath(['spec', 'action', 'serial', 'actions', 2, 'run'])).toBe('spec.action.serial.actions[2].run');
  });
});

describe('admission review', () => {
  const request = (spec: unknown, operation: 'CREATE' | 'UPDATE' | 'DELETE' = 'CREATE') => ({
    apiVersion: 'admission.k8s.io/v1' as const,
    kind: 'AdmissionReview' as const,
    request: {
      uid: 'u1',
      kind: { group: 'diego.dev', version: 'v1alpha1', kind: 'DesiredLRP' },
      operation,
      object: { spec },
    },
  });

  it('allows a valid object and echoes the uid', () => {
    expect(review(request(lrp())).response).toEqual({ uid: 'u1', allowed: true });
  });

  it('denies an invalid object with a message and causes naming the field', () => {
    const res = review(request(lrp({ action: { timeout: { timeoutMs: 0, action: run } } }))).response!;
    expect(res.allowed).toBe(false);
    expect(res.status?.message).toContain('spec.action.timeout.timeoutMs');
    expect(res.status?.details?.causes[0]?.field).toBe('spec.action.timeout.timeoutMs');
  });

  it('lets deletes through', () => {
    expect(review(request(undefined, 'DELETE')).response?.allowed).toBe(true);
  });
});
