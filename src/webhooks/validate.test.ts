import { describe, expect, it } from 'vitest';
import { MAX_ACTION_DEPTH } from '../crds/actions.ts';
import { review } from './admission.ts';
import { formatPath, routeErrors, validateSpec } from './validate.ts';

const run = { run: { path: '/bin/true', user: 'root' } };
const lrp = (extra: Record<string, unknown> = {}) => ({
  processGuid: 'web',
  domain: 'cf-apps',
  rootFs: 'preloaded:busybox',
  action: run,
  ...extra,
});

/** An AdmissionReview of a DesiredLRP with `spec`. */
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
      'my-router': [{ hostnames: ['x'.repeat(70 * 1024)] }],
      'other-router': [{ external_port: 'y'.repeat(70 * 1024) }],
    };
    expect(validateSpec('DesiredLRP', lrp({ routes })).map((e) => e.field)).toEqual(['spec.routes']);
  });

  it('refuses routes the route emitter could not register, naming the field', () => {
    const routes = {
      'cf-router': [
        { hostnames: ['app.example.test', 'no spaces allowed'], port: 8080 },
        { hostnames: ['b.test'], port: 9000 },
      ],
      'diego-ssh': { anything: 'goes' },
    };
    // Admission refuses them (review); validateSpec, which the controllers also ask, does not: stored objects run.
    expect(validateSpec('DesiredLRP', lrp({ ports: [8080], routes }))).toEqual([]);
    const denied = review({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u',
        kind: { group: 'diego.dev', version: 'v1alpha1', kind: 'DesiredLRP' },
        operation: 'CREATE',
        object: { spec: lrp({ ports: [8080], routes }) },
      },
    }).response!;
    expect(denied.allowed).toBe(false);
    expect(routeErrors(lrp({ ports: [8080], routes }))).toEqual([
      {
        field: 'spec.routes["cf-router"][0].hostnames[1]',
        message: '"no spaces allowed" is not a host name (a DNS name, maybe with a leading "*." and a /path)',
      },
      {
        field: 'spec.routes["cf-router"][1].port',
        message: 'port 9000 is not one of spec.ports (8080): no instance serves it',
      },
    ]);
    expect(
      validateSpec(
        'DesiredLRP',
        lrp({ ports: [8080], routes: { 'cf-router': [{ hostnames: ['a.test'], port: 8080 }] } }),
      ),
    ).toEqual([]);
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

describe("egress rules (Diego's SecurityGroupRule.Validate)", () => {
  const tcp80 = { protocol: 'tcp', destinations: ['10.0.0.1'], ports: [80] };
  const errorsOf = (rule: Record<string, unknown>, kind = 'DesiredLRP') => {
    const spec =
      kind === 'DesiredLRP'
        ? lrp({ egressRules: [tcp80, rule] })
        : { taskGuid: 't', domain: 'd', rootFs: 'preloaded:busybox', action: run, egressRules: [tcp80, rule] };
    return validateSpec(kind, spec);
  };

  it('accepts valid rules of every protocol, on LRPs and tasks', () => {
    for (const kind of ['DesiredLRP', 'Task']) {
      for (const rule of [
        {
          protocol: 'tcp',
          destinations: ['0.0.0.0-9.255.255.255', '10.0.0.0/8,192.168.0.1'],
          portRange: { start: 1, end: 65535 },
        },
        { protocol: 'udp', destinations: ['10.0.0.53'], ports: [53], log: true },
        { protocol: 'icmp', destinations: ['0.0.0.0/0'], icmpInfo: { type: -1, code: -1 } },
        { protocol: 'icmp', destinations: ['0.0.0.0/0'], icmpInfo: {} }, // type 0, code 0 as protobuf omits them
        { protocol: 'icmpv6', destinations: ['::/0'], icmpInfo: { type: 128, code: 0 } },
        { protocol: 'all', destinations: ['2001:db8::1-2001:db8::9'] },
      ]) {
        expect(errorsOf(rule, kind), JSON.stringify(rule)).toEqual([]);
      }
    }
  });

  it('names the field of a bad destination', () => {
    expect(errorsOf({ protocol: 'all', destinations: ['10.0.0.1', 'not-an-ip'] })).toEqual([
      { field: 'spec.egressRules[1].destinations[1]', message: expect.stringContaining("'not-an-ip': Invalid IP") },
    ]);
    expect(errorsOf({ protocol: 'all', destinations: ['10.0.0.9-10.0.0.1'] })).toEqual([
      { field: 'spec.egressRules[1].destinations[0]', message: expect.stringContaining('starts after its end') },
    ]);
    expect(errorsOf({ protocol: 'all', destinations: ['10.0.0.0/33'] })[0]?.message).toContain(
      'invalid CIDR address: 10.0.0.0/33',
    );
  });

  it('refuses icmp without icmpInfo, and icmpInfo on other protocols', () => {
    expect(errorsOf({ protocol: 'icmp', destinations: ['10.0.0.1'] })).toEqual([
      { field: 'spec.egressRules[1].icmpInfo', message: 'Missing required field: icmpInfo (icmp rules need it)' },
    ]);
    expect(errorsOf({ ...tcp80, icmpInfo: { type: 0, code: 0 } }).map((e) => e.field)).toEqual([
      'spec.egressRules[1].icmpInfo',
    ]);
    expect(
      errorsOf({ protocol: 'icmp', destinations: ['10.0.0.1'], icmpInfo: {}, ports: [1] }).map((e) => e.field),
    ).toEqual(['spec.egressRules[1].ports']);
  });

  it('refuses tcp and udp without ports or portRange, as Diego does', () => {
    for (const protocol of ['tcp', 'udp']) {
      expect(errorsOf({ protocol, destinations: ['10.0.0.1'] })).toEqual([
        { field: 'spec.egressRules[1].ports', message: 'Missing required field: ports or portRange' },
      ]);
    }
    expect(errorsOf({ ...tcp80, portRange: { start: 1, end: 2 } })).toEqual([
      { field: 'spec.egressRules[1].portRange', message: 'Invalid: ports and portRange provided' },
    ]);
    expect(errorsOf({ ...tcp80, ports: [] })).toEqual([
      { field: 'spec.egressRules[1].ports', message: 'Invalid field: ports' },
    ]);
  });

  it('refuses a reversed port range, and ports on all', () => {
    expect(errorsOf({ protocol: 'tcp', destinations: ['10.0.0.1'], portRange: { start: 1024, end: 80 } })).toEqual([
      { field: 'spec.egressRules[1].portRange', message: expect.stringContaining('Invalid field: portRange') },
    ]);
    expect(errorsOf({ protocol: 'all', destinations: ['10.0.0.1'], portRange: { start: 1, end: 2 } })).toEqual([
      { field: 'spec.egressRules[1].portRange', message: 'Invalid field: portRange' },
    ]);
  });

  it('denies such an object at admission, naming the field', () => {
    const spec = lrp({
      egressRules: [{ protocol: 'tcp', destinations: ['10.0.0.1'], portRange: { start: 9, end: 8 } }],
    });
    const res = review(request(spec)).response!;
    expect(res.allowed).toBe(false);
    expect(res.status?.message).toContain('spec.egressRules[0].portRange');
    expect(res.status?.details?.causes[0]?.field).toBe('spec.egressRules[0].portRange');
  });
});

describe('formatPath', () => {
  it('writes kubectl-style paths', () => {
    expect(formatPath(['spec', 'action', 'serial', 'actions', 2, 'run'])).toBe('spec.action.serial.actions[2].run');
  });
});

describe('admission review', () => {
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
