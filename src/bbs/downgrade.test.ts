// V3 → V2 for the .r2 routes, as Diego's models/image_layer.go does it.
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { desiredLRPToV2, taskDefinitionToV2 } from './downgrade.ts';
import {
  DesiredLRPSchema,
  ImageLayer_DigestAlgorithm,
  ImageLayer_MediaType,
  ImageLayer_Type,
  TaskDefinitionSchema,
} from './models.ts';

const layers = [
  {
    name: 'shared',
    url: 'https://x/s.tgz',
    destinationPath: '/s',
    layerType: ImageLayer_Type.SHARED,
    mediaType: ImageLayer_MediaType.TGZ,
  },
  {
    name: 'mine',
    url: 'https://x/e.tgz',
    destinationPath: '/e',
    layerType: ImageLayer_Type.EXCLUSIVE,
    mediaType: ImageLayer_MediaType.TGZ,
    digestAlgorithm: ImageLayer_DigestAlgorithm.SHA256,
    digestValue: 'abc',
  },
];

describe('V2 downgrade', () => {
  it('turns shared layers into cached dependencies and exclusive ones into downloads before setup', () => {
    const lrp = create(DesiredLRPSchema, {
      imageLayers: layers,
      legacyDownloadUser: 'vcap',
      setup: { runAction: { path: '/setup', user: 'vcap' } },
      cachedDependencies: [{ name: 'old', from: 'https://x/o', to: '/o' }],
    });
    const v2 = desiredLRPToV2(lrp);
    expect(v2.imageLayers).toEqual([]);
    expect(v2.cachedDependencies.map((c) => [c.name, c.cacheKey])).toEqual([
      ['shared', 'https://x/s.tgz'],
      ['old', ''],
    ]);
    const [parallel, setup] = v2.setup!.serialAction!.actions;
    expect(parallel!.parallelAction!.actions[0]!.downloadAction).toMatchObject({
      from: 'https://x/e.tgz',
      to: '/e',
      cacheKey: 'sha256:abc',
      checksumAlgorithm: 'sha256',
      user: 'vcap',
    });
    expect(setup!.runAction!.path).toBe('/setup');
    expect(lrp.imageLayers).toHaveLength(2); // the V3 message is left alone
  });

  it('leaves models without image layers untouched', () => {
    const def = create(TaskDefinitionSchema, { action: { runAction: { path: '/a', user: 'u' } } });
    expect(taskDefinitionToV2(def)).toBe(def);
    const v2 = taskDefinitionToV2({ ...def, imageLayers: [layers[1]!] as never });
    expect(v2.action!.serialAction!.actions[1]!.runAction!.path).toBe('/a');
  });
});
