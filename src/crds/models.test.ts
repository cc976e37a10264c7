import { describe, expect, it } from 'vitest';
import { DesiredLRP, Task } from './models.ts';

describe('typed models', () => {
  it('fill in apiVersion and kind and serialize to a manifest', () => {
    const lrp = new DesiredLRP({
      metadata: { name: 'web' },
      spec: {
        processGuid: 'web',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 2,
        action: { run: { path: '/bin/httpd', user: 'root' } },
      },
    });
    expect(lrp.toJSON()).toEqual({
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'DesiredLRP',
      metadata: { name: 'web' },
      spec: {
        processGuid: 'web',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 2,
        action: { run: { path: '/bin/httpd', user: 'root' } },
      },
    });
    expect(() => lrp.validate()).not.toThrow();
  });

  it('validate() reports the bad field', () => {
    const task = new Task({
      metadata: { name: 't' },
      spec: {
        taskGuid: 't',
        domain: 'd',
        rootFs: 'preloaded:busybox',
        action: { serial: { actions: [{ run: { path: '', user: 'root' } }] } },
      },
    });
    expect(() => task.validate()).toThrow(/spec\.action\.serial\.actions\[0\]\.run\.path/);
  });
});
