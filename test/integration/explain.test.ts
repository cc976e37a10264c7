// What a user sees when something goes wrong (kubectl describe / get): Events on crashes, the crash limit, a failed
// Task and an evacuating cell; DesiredLRP conditions that say why instances do not run; the Cell READY column. The
// full convergence pass is set to 10 minutes, so everything here comes from the changes themselves.
import { describe, expect, it } from 'vitest';
import type { IDesiredLRP } from '../../src/crds/models.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { kubectl } from '../support/kube.ts';

const env = useDiego('explain', { convergeIntervalMs: 600_000 });
const { client } = env;

let seq = 0;
function desire(spec: Partial<IDesiredLRP['spec']> & { instances: number }): Promise<IDesiredLRP> {
  const name = `app-${++seq}`;
  return client.create('DesiredLRP', {
    metadata: { name, namespace: env.ns },
    spec: {
      processGuid: `${name}-guid`,
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      memoryMb: 100,
      diskMb: 64,
      action: { run: { path: '/bin/app', user: 'root' } },
      ...spec,
    },
  });
}

const condition = async (d: IDesiredLRP, type: string) =>
  (await client.get('DesiredLRP', env.ns, d.metadata.name!)).status?.conditions?.find((c) => c.type === type);
const describeOf = async (kind: string, name: string, ns?: string) =>
  (await kubectl(['describe', ...(ns ? ['-n', ns] : []), kind, name])).stdout.replace(/\s+/g, ' ');

describe('DesiredLRP status and conditions', () => {
  it('counts instances at once and says why one cannot be placed', async () => {
    await env.startCells(1, () => ({ memoryMb: 256 }));
    const d = await desire({ instances: 3 });
    const status = await eventually(async () => {
      const s = (await client.get('DesiredLRP', env.ns, d.metadata.name!)).status;
      expect(s).toMatchObject({ runningInstances: 2, unclaimedInstances: 1 });
      return s;
    }, 30_000);
    expect(status?.conditions?.find((c) => c.type === 'Available')).toMatchObject({
      status: 'False',
      reason: 'PlacementFailed',
      message: 'insufficient resources: memory (1 of 3)',
      observedGeneration: d.metadata.generation,
    });
    expect(await describeOf('desiredlrp', d.metadata.name!, env.ns)).toMatch(
      /Message: insufficient resources: memory \(1 of 3\) Observed Generation: 1 Reason: PlacementFailed Status: False Type: Available/,
    );
    // Room appears: Available turns True (the 10-minute pass has not run).
    await env.startCells(1, () => ({ memoryMb: 1024 }));
    await eventually(async () => {
      expect(await condition(d, 'Available')).toMatchObject({ status: 'True', reason: 'AllInstancesRunning' });
      expect((await client.get('DesiredLRP', env.ns, d.metadata.name!)).status?.runningInstances).toBe(3);
    }, 30_000);
  });

  it('records each crash with its exit status, count and restart time; the crash limit; Crashing', async () => {
    const [cell] = await env.startCells(1);
    const d = await desire({
      instances: 1,
      crashRestartPolicy: { immediateRestarts: 1, minBackoffMs: 2000, maxRestarts: 2 },
    });
    const name = `${d.metadata.name}-0`;
    const runningAgain = () =>
      eventually(
        async () => expect((await client.get('ActualLRP', env.ns, name)).status?.state).toBe('RUNNING'),
        30_000,
      );
    await runningAgain();
    await cell!.crash(name, env.ns, 'APP/PROC/WEB: Exited with status 3');
    await eventually(async () => {
      expect(await describeOf('desiredlrp', d.metadata.name!, env.ns)).toMatch(
        new RegExp(
          `Warning Crashed .*instance 0 on cell ${cell!.o.cellId} crashed: APP/PROC/WEB: Exited with status 3 \\(exit status 3\\); crash count 1; restarting in 2s \\(at \\S+Z\\)`,
        ),
      );
      expect(await condition(d, 'Crashing')).toMatchObject({ status: 'True', reason: 'InstancesCrashed' });
    }, 30_000);
    await runningAgain();
    await eventually(async () => expect(await condition(d, 'Crashing')).toMatchObject({ status: 'False' }), 30_000);
    await cell!.crash(name, env.ns, 'APP/PROC/WEB: Exited with status 4');
    await eventually(async () => {
      expect(await describeOf('desiredlrp', d.metadata.name!, env.ns)).toMatch(
        /Warning CrashLimitReached .*crash count 2 reached the limit of 2: it is not restarted any more/,
      );
      expect(await condition(d, 'Available')).toMatchObject({ status: 'False', reason: 'CrashLimitReached' });
      expect(await condition(d, 'Crashing')).toMatchObject({
        status: 'True',
        reason: 'CrashLimitReached',
        message: '1 of 1 instances crashed; instance 0: APP/PROC/WEB: Exited with status 4',
      });
    }, 30_000);
  });
});

describe('Tasks', () => {
  it('records a Warning Event when a Task fails', async () => {
    await env.startCells(1, () => ({ autoComplete: { failed: true, failureReason: 'Exited with status 9' } }));
    await client.create('Task', {
      metadata: { name: 'doomed', namespace: env.ns },
      spec: {
        taskGuid: 'doomed-guid',
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 16,
        action: { run: { path: '/bin/false', user: 'root' } },
      },
    });
    await eventually(
      async () =>
        expect(await describeOf('task', 'doomed', env.ns)).toMatch(
          /Warning TaskFailed .*task doomed-guid failed: Exited with status 9/,
        ),
      30_000,
    );
  });
});

describe('Cells', () => {
  it('READY says whether a cell takes work: present, not evacuating, with room; evacuation is recorded', async () => {
    const [cell] = await env.startCells(1, () => ({ leaseSeconds: 2 }));
    const ready = async () =>
      (await client.get('Cell', undefined, cell!.name)).status?.conditions?.find((c) => c.type === 'Ready');
    await eventually(async () => {
      expect(await ready()).toMatchObject({ status: 'True', reason: 'Ready' });
      const got = await kubectl(['get', 'cells', cell!.name]);
      // NAME ZONE MEMORY FREE READY AGE (a simulated cell reports no FREE).
      expect(got.stdout).toMatch(new RegExp(`^${cell!.name}\\s+z1\\s+1024\\s+(\\d+\\s+)?True\\s`, 'm'));
    }, 30_000);
    // Full: its agent reports no container left (as a real agent does once its last slot is taken).
    const report = (containers: number) =>
      client.patchStatus('Cell', { name: cell!.name }, { available: { memoryMb: 512, diskMb: 1024, containers } });
    await report(0);
    await eventually(
      async () => expect(await ready()).toMatchObject({ status: 'False', reason: 'NoCapacity' }),
      30_000,
    );
    await report(1);
    await eventually(async () => expect(await ready()).toMatchObject({ status: 'True' }), 30_000);
    // Its agent stops renewing its presence: not ready; back: ready.
    cell!.pauseHeartbeat();
    await eventually(
      async () => expect(await ready()).toMatchObject({ status: 'False', reason: 'NotPresent' }),
      30_000,
    );
    cell!.resumeHeartbeat();
    await eventually(async () => expect(await ready()).toMatchObject({ status: 'True' }), 30_000);
    // Evacuation: recorded on the Cell.
    await cell!.evacuate();
    await eventually(async () => {
      const described = await describeOf('cell', cell!.name);
      expect(described).toMatch(/Normal Evacuating .*moving 0 LRP instances elsewhere/);
      expect(described).toMatch(/Normal Evacuated .*the cell is empty/);
    }, 30_000);
  });
});
