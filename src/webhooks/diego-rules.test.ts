import { describe, expect, it } from 'vitest';
import { validateSpec } from './validate.ts';

const run = { run: { path: '/bin/true', user: 'root' } };
const lrp = (extra: Record<string, unknown> = {}) => ({
  processGuid: 'web',
  domain: 'cf-apps',
  rootFs: 'preloaded:busybox',
  action: run,
  ...extra,
});
const task = (extra: Record<string, unknown> = {}) => ({
  taskGuid: 't',
  domain: 'd',
  rootFs: 'preloaded:busybox',
  action: run,
  ...extra,
});
const fields = (kind: string, spec: unknown) => validateSpec(kind, spec).map((e) => `${e.field}: ${e.message}`);

describe("Diego's cross-field rules", () => {
  it('accepts a relative download destination (Garden resolves it in the user home), as Diego does', () => {
    expect(
      validateSpec('DesiredLRP', lrp({ setup: { download: { from: 'http://x/a.tgz', to: '.', user: 'vcap' } } })),
    ).toEqual([]);
    expect(
      validateSpec('Task', task({ action: { upload: { from: 'result.txt', to: 'http://x/up', user: 'vcap' } } })),
    ).toEqual([]);
  });

  it('checks cached dependencies: checksum pairs and an absolute mount point', () => {
    const dep = { from: 'http://x/l.tgz', to: '/tmp/lifecycle', cacheKey: 'k' };
    expect(validateSpec('DesiredLRP', lrp({ cachedDependencies: [dep] }))).toEqual([]);
    expect(fields('DesiredLRP', lrp({ cachedDependencies: [{ ...dep, checksumValue: 'abc' }] }))).toEqual([
      'spec.cachedDependencies[0].checksumAlgorithm: is required with checksumValue',
    ]);
    expect(
      fields('Task', task({ cachedDependencies: [{ ...dep, to: 'lifecycle', checksumAlgorithm: 'md5' }] })),
    ).toEqual([
      'spec.cachedDependencies[0].checksumValue: is required with checksumAlgorithm',
      'spec.cachedDependencies[0].to: must be an absolute path (it is a bind mount)',
    ]);
  });

  it("checks image layers as Diego's ImageLayer.Validate does", () => {
    const shared = { url: 'http://x/s.tgz', destinationPath: '/s', layerType: 'SHARED', mediaType: 'TGZ' };
    const exclusive = { ...shared, layerType: 'EXCLUSIVE' };
    expect(validateSpec('DesiredLRP', lrp({ imageLayers: [shared] }))).toEqual([]);
    expect(fields('DesiredLRP', lrp({ imageLayers: [{ ...shared, digestValue: 'abc' }] }))).toEqual([
      'spec.imageLayers[0].digestAlgorithm: is required with digestValue',
    ]);
    expect(fields('DesiredLRP', lrp({ imageLayers: [exclusive] }))).toEqual([
      'spec.imageLayers[0].digestAlgorithm: is required for an EXCLUSIVE layer',
      'spec.imageLayers[0].digestValue: is required for an EXCLUSIVE layer',
      'spec.legacyDownloadUser: is required when imageLayers has an EXCLUSIVE layer (the user it is downloaded as)',
    ]);
    expect(
      validateSpec(
        'Task',
        task({
          legacyDownloadUser: 'vcap',
          imageLayers: [{ ...exclusive, digestAlgorithm: 'SHA256', digestValue: 'a' }],
        }),
      ),
    ).toEqual([]);
  });

  it('keeps volume-mounted files under /etc/cf-service-bindings', () => {
    expect(validateSpec('DesiredLRP', lrp({ volumeMountedFiles: [{ path: '/mysql/uri', content: 'x' }] }))).toEqual([]);
    expect(fields('DesiredLRP', lrp({ volumeMountedFiles: [{ path: '../../etc/passwd', content: 'x' }] }))).toEqual([
      "spec.volumeMountedFiles[0].path: must not contain '..' (files stay under /etc/cf-service-bindings)",
    ]);
    expect(fields('Task', task({ volumeMountedFiles: [{ path: '/', content: 'x' }] }))).toEqual([
      "spec.volumeMountedFiles[0].path: must name a file, e.g. 'mysql/uri'",
    ]);
  });

  it("fits sidecars in the instance's memory and disk, as Cloud Controller sizes them", () => {
    const sidecar = { action: run, memoryMb: 64 };
    expect(validateSpec('DesiredLRP', lrp({ memoryMb: 256, sidecars: [sidecar] }))).toEqual([]);
    expect(fields('DesiredLRP', lrp({ memoryMb: 128, sidecars: [sidecar, sidecar] }))).toEqual([
      "spec.sidecars: sidecars' memoryMb (128) must be less than the instance's memoryMb (128)",
    ]);
  });

  it('takes only http(s) completion callbacks', () => {
    expect(validateSpec('Task', task({ completionCallbackUrl: 'https://cc.internal/done' }))).toEqual([]);
    expect(fields('Task', task({ completionCallbackUrl: 'file:///etc/passwd' }))).toEqual([
      'spec.completionCallbackUrl: must be an http:// or https:// URL',
    ]);
  });
});
