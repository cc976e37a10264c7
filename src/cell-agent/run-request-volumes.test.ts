import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { convertVolumeMounts, lrpRunRequest, taskRunRequest } from './run-request.ts';

const run = (path: string) => ({ run: { path, user: 'vcap' } });
type VolumeMount = NonNullable<IDesiredLRP['spec']['volumeMounts']>[number];

const nfs = (volumeId: string, mountConfig?: string, mode: 'r' | 'rw' = 'rw'): VolumeMount => ({
  driver: 'nfsv3driver',
  containerDir: '/var/vcap/data/nfs',
  mode,
  shared: { volumeId, ...(mountConfig !== undefined ? { mountConfig } : {}) },
});

describe('volume mounts in run requests', () => {
  it("carries an LRP's and a Task's volume mounts with the mountConfig JSON as the driver's options", () => {
    const d: IDesiredLRP = {
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'DesiredLRP',
      metadata: { name: 'web', namespace: 'apps', uid: 'u1' },
      spec: {
        processGuid: 'pg',
        domain: 'cf-apps',
        rootFs: 'preloaded:cflinuxfs4',
        instances: 1,
        action: run('/app'),
        volumeMounts: [nfs('vol-1', '{"source":"nfs://server/share","uid":"2000"}'), nfs('vol-2', undefined, 'r')],
      },
    };
    const a: IActualLRP = {
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'ActualLRP',
      metadata: { name: 'web-0', namespace: 'apps' },
      spec: { processGuid: 'pg', index: 0, domain: 'cf-apps' },
    };
    expect(lrpRunRequest(d, a, 'ig').container.volumeMounts).toEqual([
      {
        driver: 'nfsv3driver',
        volumeId: 'vol-1',
        containerDir: '/var/vcap/data/nfs',
        mode: 'rw',
        config: { source: 'nfs://server/share', uid: '2000' },
      },
      { driver: 'nfsv3driver', volumeId: 'vol-2', containerDir: '/var/vcap/data/nfs', mode: 'r' },
    ]);
    const t = {
      metadata: { name: 't', namespace: 'apps', uid: 'tu' },
      spec: { taskGuid: 'tg', domain: 'd', rootFs: 'preloaded:x', action: run('/t'), volumeMounts: [nfs('v', 'null')] },
    } as ITask;
    expect(taskRunRequest(t).container.volumeMounts).toEqual([
      { driver: 'nfsv3driver', volumeId: 'v', containerDir: '/var/vcap/data/nfs', mode: 'rw' },
    ]);
    expect(taskRunRequest({ ...t, spec: { ...t.spec, volumeMounts: undefined } }).container.volumeMounts).toEqual([]);
  });

  it('marks a mount whose mountConfig is not a JSON object, or that names no shared volume, as invalid', () => {
    expect(convertVolumeMounts([nfs('v1', '{bad'), nfs('v2', '[1,2]'), nfs('v3', '"text"')])).toEqual([
      expect.objectContaining({
        volumeId: 'v1',
        invalid: expect.stringMatching(/^mountConfig of volume 'v1' is not JSON: /),
      }),
      expect.objectContaining({ volumeId: 'v2', invalid: "mountConfig of volume 'v2' is not a JSON object" }),
      expect.objectContaining({ volumeId: 'v3', invalid: "mountConfig of volume 'v3' is not a JSON object" }),
    ]);
    expect(convertVolumeMounts([{ driver: 'nfsv3driver', containerDir: '/d', mode: 'r' }])).toEqual([
      {
        driver: 'nfsv3driver',
        volumeId: '',
        containerDir: '/d',
        mode: 'r',
        invalid: "the volume mount of driver 'nfsv3driver' names no shared volume",
      },
    ]);
  });
});
