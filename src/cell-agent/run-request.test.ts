import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { convertImageLayers, lrpRunRequest, taskRunRequest } from './run-request.ts';

const run = (path: string) => ({ run: { path, user: 'vcap' } });

const dlrp = (spec: Partial<IDesiredLRP['spec']>): IDesiredLRP => ({
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'DesiredLRP',
  metadata: { name: 'web', namespace: 'apps', uid: 'u1' },
  spec: {
    processGuid: 'pg',
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances: 2,
    action: run('/app'),
    ...spec,
  },
});

const alrp: IActualLRP = {
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'ActualLRP',
  metadata: { name: 'web-1', namespace: 'apps' },
  spec: { processGuid: 'pg', index: 1, domain: 'cf-apps' },
};

describe('run requests', () => {
  it("gives an instance Diego's INSTANCE_* variables before its own (which may override them)", () => {
    const req = lrpRunRequest(dlrp({ environmentVariables: [{ name: 'A', value: '1' }] }), alrp, 'ig-1');
    expect(req.container.env).toEqual([
      { name: 'INSTANCE_GUID', value: 'ig-1' },
      { name: 'INSTANCE_INDEX', value: '1' },
      { name: 'CF_INSTANCE_GUID', value: 'ig-1' },
      { name: 'CF_INSTANCE_INDEX', value: '1' },
      { name: 'A', value: '1' },
    ]);
    expect(req.container).toMatchObject({ handle: 'ig-1', guid: 'ig-1', rootfs: 'preloaded:cflinuxfs4' });
  });

  it('turns shared image layers into cached dependencies and exclusive ones into downloads before the setup', () => {
    const layers = convertImageLayers(
      [
        {
          name: 'lifecycle',
          url: 'http://x/l.tgz',
          destinationPath: '/tmp/lifecycle',
          layerType: 'SHARED',
          mediaType: 'TGZ',
          digestAlgorithm: 'SHA256',
          digestValue: 'abc',
        },
        { url: 'http://x/s.tgz', destinationPath: '/s', layerType: 'SHARED', mediaType: 'TGZ' },
        {
          name: 'droplet',
          url: 'http://x/d.tgz',
          destinationPath: '/home/vcap',
          layerType: 'EXCLUSIVE',
          mediaType: 'TGZ',
          digestAlgorithm: 'SHA512',
          digestValue: 'def',
        },
      ],
      'vcap',
      run('/setup'),
    );
    expect(layers.cachedDependencies).toEqual([
      {
        name: 'lifecycle',
        from: 'http://x/l.tgz',
        to: '/tmp/lifecycle',
        cacheKey: 'sha256:abc',
        checksumAlgorithm: 'sha256',
        checksumValue: 'abc',
      },
      { from: 'http://x/s.tgz', to: '/s', cacheKey: 'http://x/s.tgz' },
    ]);
    expect(layers.setup).toEqual({
      serial: {
        actions: [
          {
            parallel: {
              actions: [
                {
                  download: {
                    artifact: 'droplet',
                    from: 'http://x/d.tgz',
                    to: '/home/vcap',
                    cacheKey: 'sha512:def',
                    user: 'vcap',
                    checksumAlgorithm: 'sha512',
                    checksumValue: 'def',
                  },
                },
              ],
            },
          },
          run('/setup'),
        ],
      },
    });
  });

  it('collects volume-mounted files of run actions with the LRP ones, and keeps the LRP limits with sidecars', () => {
    const req = lrpRunRequest(
      dlrp({
        memoryMb: 256,
        volumeMountedFiles: [{ path: '/db/uri', content: 'postgres://' }],
        action: {
          codependent: {
            actions: [{ run: { path: '/a', user: 'vcap', volumeMountedFiles: [{ path: 'x/y', content: '1' }] } }],
          },
        },
        sidecars: [{ action: run('/side'), memoryMb: 64 }],
        ports: [8080, 8080, 9000],
      }),
      alrp,
      'ig',
      { containerProxy: true },
    );
    expect(req.container.volumeMountedFiles).toEqual([
      { path: '/db/uri', content: 'postgres://' },
      { path: 'x/y', content: '1' },
    ]);
    expect(req.container.limits.memoryMb).toBe(256);
    expect(req.container.ports).toEqual([8080, 9000]);
    expect(req.container.enableContainerProxy).toBe(true);
    expect(req.sidecars).toEqual([{ action: run('/side'), memoryMb: 64, diskMb: undefined }]);
  });

  it('runs no proxy for an LRP without ports or on a cell without it, and never for tasks', () => {
    expect(lrpRunRequest(dlrp({}), alrp, 'ig', { containerProxy: true }).container.enableContainerProxy).toBe(false);
    expect(lrpRunRequest(dlrp({ ports: [8080] }), alrp, 'ig').container.enableContainerProxy).toBe(false);
    const t = {
      metadata: { name: 't', namespace: 'apps', uid: 'tu' },
      spec: {
        taskGuid: 'tg',
        domain: 'd',
        rootFs: 'preloaded:x',
        action: run('/t'),
      },
    } as ITask;
    const req = taskRunRequest(t);
    expect(req.container).toMatchObject({ handle: 'task-tu', guid: 'tg', enableContainerProxy: false });
  });

  it('asks for the credentials a docker:// work names only when the store pulls, for that work; never inline ones', async () => {
    const asked: unknown[] = [];
    const imageCredentials = {
      fetch: (work: unknown, secret: string) => {
        asked.push([work, secret]);
        return Promise.resolve({ username: 'u', password: 'p' });
      },
    };
    const docker = { rootFs: 'docker://registry.example.com/app', imageCredentialsSecret: 'app-creds' };
    const lrp = lrpRunRequest(dlrp(docker), alrp, 'ig', { imageCredentials });
    expect(asked).toEqual([]); // nothing asked while the request is built
    expect(await lrp.container.imageCredentials?.(new AbortController().signal)).toEqual({
      username: 'u',
      password: 'p',
    });
    expect(asked).toEqual([[{ namespace: 'apps', kind: 'actuallrps', name: 'web-1' }, 'app-creds']]);
    const t = {
      metadata: { name: 't', namespace: 'apps', uid: 'tu' },
      spec: { taskGuid: 'tg', domain: 'd', action: run('/t'), ...docker, imagePassword: 'inline', imageUsername: 'x' },
    } as ITask;
    await taskRunRequest(t, { imageCredentials }).container.imageCredentials?.(new AbortController().signal);
    expect(asked[1]).toEqual([{ namespace: 'apps', kind: 'tasks', name: 't' }, 'app-creds']);
    // No Secret named, or not an image: nothing to ask (inline credentials are refused at admission, never used).
    expect(
      taskRunRequest({ ...t, spec: { ...t.spec, imageCredentialsSecret: undefined } }).container.imageCredentials,
    ).toBeUndefined();
    expect(
      lrpRunRequest(dlrp({ imageCredentialsSecret: 's' }), alrp, 'ig', { imageCredentials }).container.imageCredentials,
    ).toBeUndefined();
  });

  it("gives cpu shares as Diego's executor computes them (1024 × weight / 100; an LRP's weight is at least 1)", () => {
    expect(lrpRunRequest(dlrp({ cpuWeight: 50 }), alrp, 'ig').container.limits.cpuWeight).toBe(512);
    expect(lrpRunRequest(dlrp({}), alrp, 'ig').container.limits.cpuWeight).toBe(10);
    const t = {
      metadata: { name: 't', namespace: 'apps', uid: 'u' },
      spec: { taskGuid: 'tg', domain: 'd', rootFs: 'preloaded:x', action: run('/t') },
    } as ITask;
    expect(taskRunRequest(t).container.limits.cpuWeight).toBeUndefined();
    expect(taskRunRequest({ ...t, spec: { ...t.spec, cpuWeight: 100 } }).container.limits.cpuWeight).toBe(1024);
  });
});
