// The .r2 routes answer V2 models: image layers did not exist yet, so Diego rewrites shared layers as cached
// dependencies and exclusive layers as download actions run before setup (bbs models/image_layer.go
// ToCachedDependencies / ToDownloadActions, desired_lrp.go downgradeDesiredLRPV3ToV2, task.go likewise).
import { create } from '@bufbuild/protobuf';
import {
  ActionSchema,
  CachedDependencySchema,
  ImageLayer_DigestAlgorithm,
  ImageLayer_DigestAlgorithmSchema,
  ImageLayer_Type,
  type Action,
  type CachedDependency,
  type DesiredLRP,
  type ImageLayer,
  type TaskDefinition,
} from './models.ts';

const algorithm = (l: ImageLayer) =>
  l.digestAlgorithm === ImageLayer_DigestAlgorithm.DigestAlgorithmInvalid
    ? ''
    : (ImageLayer_DigestAlgorithmSchema.value[l.digestAlgorithm]?.name ?? '').toLowerCase();

function cachedDependencies(layers: ImageLayer[]): CachedDependency[] {
  return layers
    .filter((l) => l.layerType === ImageLayer_Type.SHARED)
    .map((l) =>
      create(CachedDependencySchema, {
        name: l.name,
        from: l.url,
        to: l.destinationPath,
        checksumAlgorithm: algorithm(l),
        checksumValue: l.digestValue,
        cacheKey: l.digestValue ? `${algorithm(l)}:${l.digestValue}` : l.url,
      }),
    );
}

/** Exclusive layers as parallel downloads, run before the existing action (if any). */
function withDownloads(layers: ImageLayer[], user: string, existing: Action | undefined): Action | undefined {
  const downloads = layers
    .filter((l) => l.layerType === ImageLayer_Type.EXCLUSIVE)
    .map((l) =>
      create(ActionSchema, {
        downloadAction: {
          artifact: l.name,
          from: l.url,
          to: l.destinationPath,
          cacheKey: `${algorithm(l)}:${l.digestValue}`,
          user,
          checksumAlgorithm: algorithm(l),
          checksumValue: l.digestValue,
        },
      }),
    );
  if (downloads.length === 0) return existing;
  const parallel = create(ActionSchema, { parallelAction: { actions: downloads } });
  return existing ? create(ActionSchema, { serialAction: { actions: [parallel, existing] } }) : parallel;
}

export function desiredLRPToV2(lrp: DesiredLRP): DesiredLRP {
  if (lrp.imageLayers.length === 0) return lrp;
  return {
    ...lrp,
    cachedDependencies: [...cachedDependencies(lrp.imageLayers), ...lrp.cachedDependencies],
    setup: withDownloads(lrp.imageLayers, lrp.legacyDownloadUser, lrp.setup),
    imageLayers: [],
  };
}

export function taskDefinitionToV2(def: TaskDefinition): TaskDefinition {
  if (def.imageLayers.length === 0) return def;
  return {
    ...def,
    cachedDependencies: [...cachedDependencies(def.imageLayers), ...def.cachedDependencies],
    action: withDownloads(def.imageLayers, def.legacyDownloadUser, def.action),
    imageLayers: [],
  };
}
