// Diego's event rules applied to CR changes (bbs events/calculator, models/events.go), and the V0 desired LRP of
// the deprecated streams (models/desired_lrp.go downgradeDesiredLRPV1ToV0).
import { create, fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { actualLRPEvents, desiredLRPEvents, taskEvents, type BbsEvent } from './event-calc.ts';
import { desiredLRPToV0 } from './downgrade.ts';
import * as m from './models.ts';

const actual = (status: IActualLRP['status']): IActualLRP => ({
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'ActualLRP',
  metadata: { name: 'web-0', namespace: 'ns', uid: 'u1', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { processGuid: 'web', index: 0, domain: 'cf-apps' },
  status,
});

const running = actual({
  state: 'RUNNING',
  instanceGuid: 'i-1',
  cellId: 'cell-a',
  crashCount: 0,
  since: '2026-01-01T00:01:00Z',
});

const decode = <S extends DescMessage>(schema: S, ev: BbsEvent, version: 'current' | 'legacy' = 'current') =>
  fromBinary(schema, Buffer.from(ev.payload(version), 'base64'));

describe('actual LRP events', () => {
  it('a crash reports actual_lrp_crashed first, naming the instance that crashed, then the change', () => {
    const crashed = actual({
      state: 'CRASHED',
      crashCount: 1,
      crashReason: 'Exited with status 1',
      since: '2026-01-01T00:02:00Z',
    });
    const { instance, group } = actualLRPEvents(running, crashed);
    expect(instance.map((e) => e.name)).toEqual(['actual_lrp_crashed', 'actual_lrp_instance_changed']);
    expect(group.map((e) => e.name)).toEqual(['actual_lrp_crashed', 'actual_lrp_changed']);
    const c = decode(m.ActualLRPCrashedEventSchema, instance[0]!);
    expect(c.actualLrpKey).toMatchObject({ processGuid: 'web', index: 0, domain: 'cf-apps' });
    expect(c.actualLrpInstanceKey).toMatchObject({ instanceGuid: 'i-1', cellId: 'cell-a' });
    expect([c.crashCount, c.crashReason]).toEqual([1, 'Exited with status 1']);
    // The crashed instance has left its cell; the change keeps the keys it had, so a cell filter still sees it.
    const ch = decode(m.ActualLRPInstanceChangedEventSchema, instance[1]!);
    expect(ch.actualLrpInstanceKey?.cellId).toBe('cell-a');
    expect([ch.before?.state, ch.after?.state, ch.after?.crashCount]).toEqual(['RUNNING', 'CRASHED', 1]);
    expect(instance.every((e) => e.cellIds?.includes('cell-a'))).toBe(true);
  });

  it("going back to UNCLAIMED is a new instance: created, then the placed one removed (Diego's order)", () => {
    const unclaimed = actual({ state: 'UNCLAIMED', crashCount: 0 });
    const { instance, group } = actualLRPEvents(running, unclaimed);
    expect(instance.map((e) => e.name)).toEqual(['actual_lrp_instance_created', 'actual_lrp_instance_removed']);
    expect(decode(m.ActualLRPInstanceRemovedEventSchema, instance[1]!).actualLrp?.state).toBe('RUNNING');
    expect(group.map((e) => e.name)).toEqual(['actual_lrp_changed']);
  });

  it('created, changed to RUNNING, removed; nothing for a change BBS cannot see', () => {
    const claimed = actual({ state: 'CLAIMED', instanceGuid: 'i-1', cellId: 'cell-a' });
    expect(actualLRPEvents(undefined, claimed).instance.map((e) => e.name)).toEqual(['actual_lrp_instance_created']);
    const toRunning = actualLRPEvents(claimed, running);
    expect(toRunning.instance.map((e) => e.name)).toEqual(['actual_lrp_instance_changed']);
    expect(toRunning.group.map((e) => e.name)).toEqual(['actual_lrp_changed']);
    expect(actualLRPEvents(running, undefined).instance.map((e) => e.name)).toEqual(['actual_lrp_instance_removed']);
    expect(actualLRPEvents(running, undefined).group.map((e) => e.name)).toEqual(['actual_lrp_removed']);
    const relabelled = { ...running, metadata: { ...running.metadata, labels: { a: 'b' }, resourceVersion: '9' } };
    expect(actualLRPEvents(running, relabelled)).toEqual({ instance: [], group: [] });
  });

  it('an instance placed elsewhere is removed from the old cell and created on the new one in the group stream', () => {
    const moved = actual({ state: 'CLAIMED', instanceGuid: 'i-2', cellId: 'cell-b' });
    const { group } = actualLRPEvents(running, moved);
    expect(group.map((e) => [e.name, e.cellIds])).toEqual([
      ['actual_lrp_created', ['cell-b']],
      ['actual_lrp_removed', ['cell-a']],
    ]);
  });
});

const desired = (instances: number, extra: Partial<IDesiredLRP['spec']> = {}): IDesiredLRP => ({
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'DesiredLRP',
  metadata: { name: 'web', namespace: 'ns', uid: 'u', generation: instances },
  spec: {
    processGuid: 'web',
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances,
    action: { run: { path: '/bin/app', user: 'vcap' } },
    metricTags: { source_id: { static: 'x' } },
    ...extra,
  },
});

describe('desired LRP events', () => {
  it('created, changed with before and after, removed; never filtered by cell', () => {
    const [c] = desiredLRPEvents(undefined, desired(1));
    expect(c!.name).toBe('desired_lrp_created');
    expect(c!.cellIds).toBeUndefined();
    const [ch] = desiredLRPEvents(desired(1), desired(2));
    const e = decode(m.DesiredLRPChangedEventSchema, ch!);
    expect([e.before?.instances, e.after?.instances]).toEqual([1, 2]);
    expect(desiredLRPEvents(desired(2), undefined).map((x) => x.name)).toEqual(['desired_lrp_removed']);
    expect(desiredLRPEvents(desired(2), desired(2))).toEqual([]);
  });

  it('the deprecated streams carry V0 desired LRPs', () => {
    const spec = {
      startTimeoutMs: 60_000,
      cachedDependencies: [{ name: 'buildpack', from: 'http://b/x.tgz', to: '/tmp/b', cacheKey: 'k' }],
      setup: { try: { action: { timeout: { action: { run: { path: '/s', user: 'vcap' } }, timeoutMs: 5000 } } } },
      legacyDownloadUser: 'vcap',
    } as unknown as Partial<IDesiredLRP['spec']>;
    const [ev] = desiredLRPEvents(undefined, desired(1, spec));
    const v0 = decode(m.DesiredLRPCreatedEventSchema, ev!, 'legacy').desiredLrp!;
    expect(v0.deprecatedStartTimeoutS).toBe(60);
    expect(v0.cachedDependencies).toEqual([]);
    const [downloads, timeout] = v0.setup!.serialAction!.actions;
    expect(downloads!.parallelAction!.actions[0]!.downloadAction).toMatchObject({
      artifact: 'buildpack',
      from: 'http://b/x.tgz',
      to: '/tmp/b',
      cacheKey: 'k',
      user: 'vcap',
    });
    // Diego's SetDeprecatedTimeoutNs drops the try wrapper and fills in nanoseconds.
    expect(timeout!.timeoutAction?.deprecatedTimeoutNs).toBe(5_000_000_000n);
    const current = decode(m.DesiredLRPCreatedEventSchema, ev!).desiredLrp!;
    expect(current.cachedDependencies).toHaveLength(1);
    expect(current.setup?.tryAction).toBeDefined();
  });

  it('leaves a V3 desired LRP without cached dependencies or timeouts as it is, apart from the start timeout', () => {
    const lrp = create(m.DesiredLRPSchema, { processGuid: 'p', startTimeoutMs: 1500n });
    const v0 = desiredLRPToV0(lrp);
    expect(v0.setup).toBeUndefined();
    expect(v0.deprecatedStartTimeoutS).toBe(1);
  });
});

describe('task events', () => {
  const task = (state: string): ITask =>
    ({
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'Task',
      metadata: { name: 't', namespace: 'ns', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        taskGuid: 't',
        domain: 'cf-tasks',
        rootFs: 'preloaded:cflinuxfs4',
        action: { run: { path: '/bin/true', user: 'vcap' } },
      },
      status: { state },
    }) as ITask;

  it('created, changed, removed', () => {
    expect(taskEvents(undefined, task('Pending')).map((e) => e.name)).toEqual(['task_created']);
    const [ch] = taskEvents(task('Pending'), task('Running'));
    const e = decode(m.TaskChangedEventSchema, ch!);
    expect([e.before?.state, e.after?.state]).toEqual([m.Task_State.Pending, m.Task_State.Running]);
    expect(taskEvents(task('Resolving'), undefined).map((x) => x.name)).toEqual(['task_removed']);
    expect(taskEvents(task('Running'), task('Running'))).toEqual([]);
  });
});
