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

/** Diego's SetDeprecatedTimeoutNs: timeout actions also carry their timeout in ns; try and emit_progress
 * wrappers are replaced by what they wrap (as Diego's V0 down-conversion does). */
function withDeprecatedTimeouts(action: Action | undefined): Action | undefined {
  if (!action) return action;
  const { timeoutAction, emitProgressAction, tryAction, parallelAction, serialAction, codependentAction } = action;
  const each = (actions: Action[]) => actions.map((a) => withDeprecatedTimeouts(a) ?? a);
  if (timeoutAction) {
    return create(ActionSchema, {
      timeoutAction: { ...timeoutAction, deprecatedTimeoutNs: timeoutAction.timeoutMs * 1_000_000n },
    });
  }
  if (emitProgressAction) return withDeprecatedTimeouts(emitProgressAction.action);
  if (tryAction) return withDeprecatedTimeouts(tryAction.action);
  if (parallelAction)
    return { ...action, parallelAction: { ...parallelAction, actions: each(parallelAction.actions) } };
  if (serialAction) return { ...action, serialAction: { ...serialAction, actions: each(serialAction.actions) } };
  if (codependentAction) {
    return { ...action, codependentAction: { ...codependentAction, actions: each(codependentAction.actions) } };
  }
  return action;
}

/** V0, for the deprecated event streams (models/desired_lrp.go downgradeDesiredLRPV1ToV0): deprecated timeouts
 * filled in and cached dependencies as parallel downloads before the setup action. */
export function desiredLRPToV0(lrp: DesiredLRP): DesiredLRP {
  const v2 = desiredLRPToV2(lrp);
  let setup = withDeprecatedTimeouts(v2.setup);
  if (v2.cachedDependencies.length > 0) {
    const downloads = create(ActionSchema, {
      parallelAction: {
        actions: v2.cachedDependencies.map((c) =>
          create(ActionSchema, {
            downloadAction: {
              artifact: c.name,
              from: c.from,
              to: c.to,
              cacheKey: c.cacheKey,
              logSource: c.logSource,
              user: v2.legacyDownloadUser,
            },
          }),
        ),
      },
    });
    setup = create(ActionSchema, { serialAction: { actions: setup ? [downloads, setup] : [downloads] } });
  }
  return {
    ...v2,
    action: withDeprecatedTimeouts(v2.action),
    monitor: withDeprecatedTimeouts(v2.monitor),
    setup,
    deprecatedStartTimeoutS: Math.floor(Number(BigInt.asUintN(32, v2.startTimeoutMs)) / 1000),
    cachedDependencies: [],
  };
}
