import { describe, expect, it } from 'vitest';
import { matchRootFs, parseRootFs } from './rootfs.ts';

describe('parseRootFs', () => {
  it('takes the opaque part of preloaded URLs', () => {
    expect(parseRootFs('preloaded:cflinuxfs4')).toEqual({ scheme: 'preloaded', opaque: 'cflinuxfs4' });
    expect(parseRootFs('preloaded+layer:cflinuxfs4?layer=https://blob/x.tgz&layer_digest=abc')).toEqual({
      scheme: 'preloaded+layer',
      opaque: 'cflinuxfs4',
    });
    expect(parseRootFs('preloaded:busybox#frag')).toEqual({ scheme: 'preloaded', opaque: 'busybox' });
  });

  it('lower-cases the scheme and leaves hierarchical URLs without an opaque part', () => {
    expect(parseRootFs('DOCKER:///cloudfoundry/grace#latest')).toEqual({ scheme: 'docker', opaque: '' });
    expect(parseRootFs('docker://registry.io/image')).toEqual({ scheme: 'docker', opaque: '' });
  });

  it('rejects strings without a valid scheme', () => {
    for (const bad of ['', 'cflinuxfs4', ':x', '1abc:x', 'a b:x', 'pre\nloaded:x', '/abs/path']) {
      expect(parseRootFs(bad), bad).toBeUndefined();
    }
  });
});

describe('matchRootFs', () => {
  // What Diego's rep (and our cell agent) advertises: both fixed-set schemes with the same stacks.
  const providers = [
    { name: 'preloaded', properties: ['cflinuxfs4', 'busybox'] },
    { name: 'preloaded+layer', properties: ['cflinuxfs4', 'busybox'] },
    { name: 'docker' },
  ];

  it('matches preloaded and preloaded+layer by stack name', () => {
    expect(matchRootFs(providers, 'preloaded:cflinuxfs4')).toBe(true);
    expect(matchRootFs(providers, 'preloaded:busybox')).toBe(true);
    expect(matchRootFs(providers, 'preloaded:cflinuxfs3')).toBe(false);
    expect(matchRootFs(providers, 'preloaded+layer:cflinuxfs4?layer=http://x')).toBe(true);
    expect(matchRootFs(providers, 'preloaded+layer:windows?layer=http://x')).toBe(false);
    expect(matchRootFs(providers, 'preloaded:///cflinuxfs4')).toBe(false);
    expect(matchRootFs(providers, 'PRELOADED:busybox')).toBe(true); // Go's url.Parse lower-cases the scheme
  });

  it('matches a fixed-set scheme only with the provider of that exact scheme', () => {
    const preloadedOnly = [{ name: 'preloaded', properties: ['cflinuxfs4'] }];
    expect(matchRootFs(preloadedOnly, 'preloaded:cflinuxfs4')).toBe(true);
    expect(matchRootFs(preloadedOnly, 'preloaded+layer:cflinuxfs4?layer=http://x')).toBe(false);
    const layerOnly = [{ name: 'preloaded+layer', properties: ['cflinuxfs4'] }];
    expect(matchRootFs(layerOnly, 'preloaded:cflinuxfs4')).toBe(false);
    expect(matchRootFs(layerOnly, 'preloaded+layer:cflinuxfs4')).toBe(true);
    // Each scheme's own stacks count, not the other's.
    const split = [
      { name: 'preloaded', properties: ['a'] },
      { name: 'preloaded+layer', properties: ['b'] },
    ];
    expect(matchRootFs(split, 'preloaded:a')).toBe(true);
    expect(matchRootFs(split, 'preloaded:b')).toBe(false);
    expect(matchRootFs(split, 'preloaded+layer:b')).toBe(true);
    expect(matchRootFs(split, 'preloaded+layer:a')).toBe(false);
  });

  it('matches any other scheme when the cell lists that provider', () => {
    expect(matchRootFs(providers, 'docker:///cloudfoundry/grace#latest')).toBe(true);
    expect(matchRootFs(providers, 'oci:///image')).toBe(false);
    expect(matchRootFs([{ name: 'preloaded', properties: ['cflinuxfs4'] }], 'docker:///x')).toBe(false);
    expect(matchRootFs([], 'preloaded:cflinuxfs4')).toBe(false);
  });

  it('never matches an unparseable rootfs', () => {
    expect(matchRootFs(providers, 'cflinuxfs4')).toBe(false);
  });
});
