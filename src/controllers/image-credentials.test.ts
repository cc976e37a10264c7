// Who may read which image credentials, decided without a cluster: the cell agent of node A gets the credentials of
// work placed on A, and nothing else.
import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { basicAuthSecret, credentialsOf, NODE_NAME_EXTRA } from '../lib/image-credentials.ts';
import { cellOf, decideActualLRP, decideTask, parseRequest, type CredentialsRequest } from './image-credentials.ts';

const AGENT = 'system:serviceaccount:diego-system:diego-operator-cell-agent';
const run = { run: { path: '/bin/true', user: 'root' } };

const desired = (over: Partial<IDesiredLRP['spec']> = {}, uid = 'd-uid'): IDesiredLRP => ({
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'DesiredLRP',
  metadata: { name: 'app', namespace: 'apps', uid },
  spec: {
    processGuid: 'app',
    domain: 'cf-apps',
    rootFs: 'docker://registry.example.com/app',
    instances: 2,
    action: run,
    imageCredentialsSecret: 'app-creds',
    ...over,
  },
});

const actual = (
  name: string,
  cellId: string | undefined,
  over: { index?: number; presence?: 'ORDINARY' | 'EVACUATING' | 'SUSPECT'; ownerUid?: string; owner?: boolean } = {},
): IActualLRP => ({
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'ActualLRP',
  metadata: {
    name,
    namespace: 'apps',
    ...(over.owner === false
      ? {}
      : {
          ownerReferences: [
            { apiVersion: 'diego.dev/v1alpha1', kind: 'DesiredLRP', name: 'app', uid: over.ownerUid ?? 'd-uid' },
          ],
        }),
  },
  spec: { processGuid: 'app', index: over.index ?? 0, domain: 'cf-apps', ...(cellId ? { cellId } : {}) },
  status: { presence: over.presence ?? 'ORDINARY' },
});

const task = (cellId: string | undefined, over: Partial<ITask['spec']> = {}, state = 'Pending'): ITask =>
  ({
    metadata: { name: 'job', namespace: 'apps', uid: 't-uid' },
    spec: {
      taskGuid: 'job',
      domain: 'cf-tasks',
      rootFs: 'docker://registry.example.com/job',
      action: run,
      imageCredentialsSecret: 'job-creds',
      ...(cellId ? { cellId } : {}),
      ...over,
    },
    status: { state },
  }) as ITask;

const lrpReq = (name = 'app-0', secret = 'app-creds'): CredentialsRequest => ({
  namespace: 'apps',
  kind: 'actuallrps',
  name,
  secret,
});
const taskReq = (secret = 'job-creds'): CredentialsRequest => ({
  namespace: 'apps',
  kind: 'tasks',
  name: 'job',
  secret,
});

const rule = (v: { allowed: boolean; rule?: string }) => (v.allowed ? 'allowed' : v.rule);

describe('who is asking', () => {
  it('knows a cell agent by the node its bound token names; nobody else is a cell', () => {
    expect(cellOf({ username: AGENT, extra: { [NODE_NAME_EXTRA]: ['node-a'] } }, [AGENT])).toEqual({
      allowed: true,
      cellId: 'node-a',
    });
    const other = cellOf({ username: 'system:serviceaccount:apps:default', extra: { [NODE_NAME_EXTRA]: ['a'] } }, [
      AGENT,
    ]);
    expect(rule(other)).toBe('credentials.cell-agent');
    const legacy = cellOf({ username: AGENT }, [AGENT]);
    expect(rule(legacy)).toBe('credentials.bound-token');
    expect(legacy.allowed || legacy.message).toMatch(/names no node \(a legacy Secret token or an unbound token\)/);
    expect(rule(cellOf({ username: AGENT, extra: { [NODE_NAME_EXTRA]: [''] } }, [AGENT]))).toBe(
      'credentials.bound-token',
    );
    expect(rule(cellOf({ username: AGENT, extra: { [NODE_NAME_EXTRA]: ['a'] } }, []))).toBe('credentials.cell-agent');
  });
});

describe('an ActualLRP', () => {
  it("gives the cell it is placed on its DesiredLRP's Secret", () => {
    expect(decideActualLRP('node-a', lrpReq(), actual('app-0', 'node-a'), desired())).toEqual({
      allowed: true,
      secret: { namespace: 'apps', name: 'app-creds' },
    });
    expect(decideActualLRP('node-a', lrpReq('app-1'), actual('app-1', 'node-a', { index: 1 }), desired()).allowed).toBe(
      true,
    );
  });

  it('refuses another cell, and work placed nowhere', () => {
    const other = decideActualLRP('node-a', lrpReq(), actual('app-0', 'node-b'), desired());
    expect(other).toMatchObject({ allowed: false, status: 403, rule: 'credentials.placed' });
    expect(other.allowed || other.message).toBe(
      '[credentials.placed] actuallrps apps/app-0 is placed on cell node-b, not node-a',
    );
    const nowhere = decideActualLRP('node-a', lrpReq(), actual('app-0', undefined), desired());
    expect(nowhere.allowed || nowhere.message).toMatch(/is not placed on any cell/);
    expect(decideActualLRP('node-a', lrpReq(), undefined, undefined)).toMatchObject({ status: 404 });
  });

  it('refuses copies (a cell agent creates EVACUATING copies itself) and records that are no instance of it', () => {
    // A compromised node may create <instance>-evacuating on itself for any instance: admission cannot tell.
    const forged = actual('app-0-evacuating', 'node-a', { presence: 'ORDINARY' });
    expect(rule(decideActualLRP('node-a', lrpReq('app-0-evacuating'), forged, desired()))).toBe('credentials.ordinary');
    const copy = actual('app-0', 'node-a', { presence: 'EVACUATING' });
    expect(rule(decideActualLRP('node-a', lrpReq(), copy, desired()))).toBe('credentials.ordinary');
    expect(rule(decideActualLRP('node-a', lrpReq(), actual('app-0', 'node-a', { owner: false }), desired()))).toBe(
      'credentials.ordinary',
    );
    // Named like another index, or owned by a DesiredLRP of the same name that was replaced.
    expect(rule(decideActualLRP('node-a', lrpReq('app-7'), actual('app-7', 'node-a', { index: 0 }), desired()))).toBe(
      'credentials.ordinary',
    );
    expect(rule(decideActualLRP('node-a', lrpReq(), actual('app-0', 'node-a', { ownerUid: 'old' }), desired()))).toBe(
      'credentials.ordinary',
    );
    expect(decideActualLRP('node-a', lrpReq(), actual('app-0', 'node-a'), undefined)).toMatchObject({
      status: 404,
      rule: 'credentials.ordinary',
    });
  });

  it('gives only the Secret the DesiredLRP names, and only for an image pull', () => {
    const notNamed = decideActualLRP('node-a', lrpReq('app-0', 'other'), actual('app-0', 'node-a'), desired());
    expect(notNamed.allowed || notNamed.message).toBe(
      '[credentials.named] the DesiredLRP apps/app names the Secret app-creds in spec.imageCredentialsSecret, not other',
    );
    const none = desired({ imageCredentialsSecret: undefined });
    expect(rule(decideActualLRP('node-a', lrpReq(), actual('app-0', 'node-a'), none))).toBe('credentials.named');
    const preloaded = desired({ rootFs: 'preloaded:cflinuxfs4' });
    expect(rule(decideActualLRP('node-a', lrpReq(), actual('app-0', 'node-a'), preloaded))).toBe('credentials.docker');
  });
});

describe('a Task', () => {
  it('gives the cell it is placed on its Secret while it is to start or running', () => {
    expect(decideTask('node-a', taskReq(), task('node-a'))).toMatchObject({ allowed: true });
    expect(decideTask('node-a', taskReq(), task('node-a', {}, 'Running'))).toMatchObject({ allowed: true });
  });

  it('refuses another cell, no cell, a finished task, another Secret', () => {
    expect(rule(decideTask('node-a', taskReq(), task('node-b')))).toBe('credentials.placed');
    expect(rule(decideTask('node-a', taskReq(), task(undefined)))).toBe('credentials.placed');
    expect(rule(decideTask('node-a', taskReq(), task('node-a', {}, 'Completed')))).toBe('credentials.running');
    expect(rule(decideTask('node-a', taskReq('app-creds'), task('node-a')))).toBe('credentials.named');
    expect(decideTask('node-a', taskReq(), undefined)).toMatchObject({ status: 404 });
  });
});

describe('the Secret', () => {
  it('must be a basic-auth Secret with both keys', () => {
    const good = basicAuthSecret('apps', 'app-creds', { username: 'deploy', password: 'hunter2' });
    expect(credentialsOf(good)).toEqual({ ok: true, credentials: { username: 'deploy', password: 'hunter2' } });
    const opaque = { ...good, type: 'Opaque' };
    expect(credentialsOf(opaque)).toMatchObject({ ok: false, reason: expect.stringMatching(/of type Opaque/) });
    const noPassword = { ...good, data: { username: good.data!.username! } };
    expect(credentialsOf(noPassword)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/username and password/),
    });
  });
});

describe('a request', () => {
  it('names the namespace, the kind (actuallrps or tasks), the work and the Secret', () => {
    expect(parseRequest({ namespace: 'apps', kind: 'tasks', name: 'job', secret: 's' })).toEqual({
      ok: true,
      request: { namespace: 'apps', kind: 'tasks', name: 'job', secret: 's' },
    });
    expect(parseRequest({ namespace: 'apps', kind: 'desiredlrps', name: 'app', secret: 's' }).ok).toBe(false);
    expect(parseRequest({ namespace: 'apps', kind: 'tasks', name: 'job' }).ok).toBe(false);
    expect(parseRequest({ namespace: 'apps', kind: 'tasks', name: 'job', secret: ['a', 'b'] }).ok).toBe(false);
  });
});
