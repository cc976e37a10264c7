// BBS protobuf models ↔ Diego custom resources. The CR specs are the BBS fields in camelCase, so most of the
// work is protobuf-es's canonical JSON plus a few renames: actions are `{run: …}` in CRs but
// `{run_action: …}` in protobuf, routes are JSON in CRs but bytes in protobuf, int64s are numbers in CRs.
import { createHash } from 'node:crypto';
import { create, fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { DesiredLRPSpec } from '../crds/desired-lrp.ts';
import { TaskSpec } from '../crds/task.ts';
import { MAX_ACTION_DEPTH } from '../crds/actions.ts';
import { BbsFailure, invalidField } from './errors.ts';
import {
  ActualLRP_Presence,
  ActualLRPNetInfo_PreferredAddress,
  ActualLRPSchema,
  DesiredLRPSchedulingInfoSchema,
  DesiredLRPSchema,
  Error_Type,
  MetricTagValueSchema,
  Task_State,
  TaskDefinitionSchema,
  TaskSchema,
  type Action,
  type ActualLRP,
  type DesiredLRP,
  type DesiredLRPSchedulingInfo,
  type Task,
  type TaskDefinition,
} from './models.ts';

type Json = Record<string, unknown>;

const GUID = /^[a-zA-Z0-9_-]+$/;
const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** CR name for a guid: the guid itself when Kubernetes accepts it, else a stable hash (look up by field selector). */
export function objectName(guid: string): string {
  if (guid.length <= 63 && DNS_NAME.test(guid)) return guid;
  return `p-${createHash('sha256').update(guid).digest('hex').slice(0, 16)}`;
}

const ACTIONS = ['download', 'upload', 'run', 'timeout', 'emitProgress', 'try', 'parallel', 'serial', 'codependent'];
// 64-bit integers: canonical protobuf JSON writes them as strings; the CRs hold numbers.
const INT64_KEYS = new Set([
  'timeoutMs',
  'startTimeoutMs',
  'bytesPerSecond',
  'nofile',
  'nproc',
  'connectTimeoutMs',
  'intervalMs',
  'requestTimeoutMs',
]);
// Protobuf fields with no place in a CR (deprecated, or kept by the apiserver instead).
const DROPPED = new Set(['deprecatedTimeoutNs', 'deprecatedStartTimeoutS', 'modificationTag']);

/** Deep-renames keys: `fromProto` true turns `runAction` into `run` (and fixes int64s), false the reverse. */
function reshape(value: unknown, fromProto: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => reshape(v, fromProto));
  if (value === null || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value as Json)) {
    if (fromProto && DROPPED.has(k)) continue;
    let key = k;
    if (fromProto && k.endsWith('Action') && ACTIONS.includes(k.slice(0, -6))) key = k.slice(0, -6);
    if (!fromProto && ACTIONS.includes(k) && isObject(v)) key = `${k}Action`;
    out[key] = fromProto && INT64_KEYS.has(k) && typeof v === 'string' ? Number(v) : reshape(v, fromProto);
  }
  return out;
}

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** ProtoRoutes JSON ({routes: {name: base64}}) → CR routes ({name: any JSON}). */
function routesFromProto(routes: unknown): Json | undefined {
  const inner = isObject(routes) && isObject(routes.routes) ? routes.routes : undefined;
  if (!inner) return undefined;
  const out: Json = {};
  for (const [k, v] of Object.entries(inner)) {
    const text = Buffer.from(String(v), 'base64').toString('utf8');
    try {
      out[k] = JSON.parse(text) as unknown;
    } catch {
      throw invalidField('routes');
    }
  }
  return out;
}

function routesToProto(routes: unknown): Json | undefined {
  if (!isObject(routes)) return undefined;
  const out: Json = {};
  for (const [k, v] of Object.entries(routes)) out[k] = Buffer.from(JSON.stringify(v)).toString('base64');
  return { routes: out };
}

/** Diego's own checks (models/desired_lrp.go, task.go) that our CR schema does not express the same way. */
function validateCommon(
  guidField: string,
  guid: string,
  domain: string,
  rootFs: string,
  hasAction: boolean,
  more: string[] = [],
): void {
  const bad: string[] = [];
  if (!GUID.test(guid)) bad.push(guidField);
  if (!domain) bad.push('domain');
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(rootFs)) bad.push('rootfs');
  if (!hasAction) bad.push('action');
  bad.push(...more);
  if (bad.length > 0) throw invalidField(...bad);
}

/** Runs the CR's zod schema so bad input fails as InvalidRequest before it reaches the apiserver. */
function checkSpec<T>(
  schema: {
    safeParse(
      v: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[] }[] } };
  },
  spec: unknown,
): void {
  const r = schema.safeParse(spec);
  if (!r.success) throw invalidField(...new Set(r.error.issues.map((i) => i.path.map(String).join('.') || 'request')));
}

/** Depth of an action tree, counted no further than `limit` + 1 so a hostile tree costs little. */
function actionDepth(a: Action | undefined, limit = MAX_ACTION_DEPTH): number {
  if (!a) return 0;
  if (limit < 0) return 1;
  const inner = a.timeoutAction?.action ?? a.emitProgressAction?.action ?? a.tryAction?.action;
  const many = a.serialAction?.actions ?? a.parallelAction?.actions ?? a.codependentAction?.actions ?? [];
  let deepest = actionDepth(inner, limit - 1);
  for (const child of many) deepest = Math.max(deepest, actionDepth(child, limit - 1));
  return 1 + deepest;
}

/** The webhook's depth limit, checked on the protobuf tree before anything walks it recursively. */
function checkDepth(fields: [string, Action | undefined][]): void {
  const deep = fields.filter(([, a]) => actionDepth(a) > MAX_ACTION_DEPTH).map(([f]) => f);
  if (deep.length > 0) throw invalidField(...deep);
}

export function desiredLRPToSpec(lrp: DesiredLRP): IDesiredLRP['spec'] {
  checkDepth([
    ['setup', lrp.setup],
    ['action', lrp.action],
    ['monitor', lrp.monitor],
  ]);
  const more = [
    ...(lrp.instances < 0 ? ['instances'] : []),
    ...(Object.keys(lrp.metricTags).length === 0 ? ['metric_tags'] : []),
  ];
  validateCommon('process_guid', lrp.processGuid, lrp.domain, lrp.rootFs, lrp.action !== undefined, more);
  const json = reshape(toJson(DesiredLRPSchema, lrp), true) as Json;
  const { PlacementTags: tags, routes, ...rest } = json;
  const spec: Json = { ...rest, instances: lrp.instances };
  if (tags !== undefined) spec.placementTags = tags;
  const r = routesFromProto(routes);
  if (r !== undefined) spec.routes = r;
  checkSpec(DesiredLRPSpec, spec);
  return spec as IDesiredLRP['spec'];
}

/** CR → BBS DesiredLRP (V3: stored as is), with Diego's metrics_guid ↔ source_id fill-in. */
export function desiredLRPFromCR(cr: IDesiredLRP): DesiredLRP {
  const { placementTags, routes, crashRestartPolicy: _c, terminationGracePeriodMs: _t, ...rest } = cr.spec;
  const json = reshape(rest, false) as Json;
  if (placementTags) json.PlacementTags = placementTags;
  const r = routesToProto(routes);
  if (r) json.routes = r;
  const lrp = fromJson(DesiredLRPSchema, json as JsonValue, { ignoreUnknownFields: true });
  lrp.modificationTag = {
    $typeName: 'models.ModificationTag',
    epoch: cr.metadata.uid ?? '',
    index: cr.metadata.generation ?? 0,
  };
  // Diego's PopulateMetricsGuid: metrics_guid and metric_tags.source_id fill in for each other.
  const source = lrp.metricTags.source_id;
  if (source && !lrp.metricsGuid) lrp.metricsGuid = source.static;
  if (!source && lrp.metricsGuid) lrp.metricTags.source_id = create(MetricTagValueSchema, { static: lrp.metricsGuid });
  return lrp;
}

export function schedulingInfoOf(lrp: DesiredLRP): DesiredLRPSchedulingInfo {
  return create(DesiredLRPSchedulingInfoSchema, {
    desiredLrpKey: { processGuid: lrp.processGuid, domain: lrp.domain, logGuid: lrp.logGuid },
    annotation: lrp.annotation,
    instances: lrp.instances,
    desiredLrpResource: { diskMb: lrp.diskMb, memoryMb: lrp.memoryMb, rootFs: lrp.rootFs, maxPids: lrp.maxPids },
    routes: lrp.routes,
    modificationTag: lrp.modificationTag,
    PlacementTags: lrp.PlacementTags,
  });
}

export function taskToSpec(taskGuid: string, domain: string, def: TaskDefinition | undefined): ITask['spec'] {
  checkDepth([['action', def?.action]]);
  validateCommon('task_guid', taskGuid, domain, def?.rootFs ?? '', def?.action !== undefined);
  const json = reshape(toJson(TaskDefinitionSchema, def ?? create(TaskDefinitionSchema)), true) as Json;
  const spec: Json = { taskGuid, domain, ...json };
  checkSpec(TaskSpec, spec);
  return spec as ITask['spec'];
}

const ns = (t: string | undefined): bigint => (t ? BigInt(Date.parse(t)) * 1_000_000n : 0n);

export function taskFromCR(cr: ITask): Task {
  const { taskGuid, domain, cellId: _c, cancelled: _x, ...def } = cr.spec;
  const definition = fromJson(TaskDefinitionSchema, reshape(def, false) as JsonValue, { ignoreUnknownFields: true });
  const st = cr.status ?? {};
  return create(TaskSchema, {
    taskDefinition: definition,
    taskGuid,
    domain,
    createdAt: ns(cr.metadata.creationTimestamp),
    updatedAt: ns(st.updatedAt ?? cr.metadata.creationTimestamp),
    firstCompletedAt: ns(st.firstCompletedAt),
    state: Task_State[st.state ?? 'Pending'],
    cellId: st.cellId ?? '',
    result: st.result ?? '',
    failed: st.failed ?? false,
    failureReason: st.failureReason ?? '',
    rejectionCount: st.rejectionCount ?? 0,
    rejectionReason: st.rejectionReason ?? '',
  });
}

/**
 * Translations of ActualLRP objects, per object: an informer holds one object per version, so a record listed by many
 * requests (the BBS read cache) is translated once per version. Callers must not change the message.
 */
const translatedLRPs = new WeakMap<IActualLRP, ActualLRP>();

export function actualLRPFromCR(cr: IActualLRP): ActualLRP {
  let lrp = translatedLRPs.get(cr);
  if (!lrp) translatedLRPs.set(cr, (lrp = translateActualLRP(cr)));
  return lrp;
}

function translateActualLRP(cr: IActualLRP): ActualLRP {
  const st = cr.status ?? {};
  const net = st.netInfo ?? {};
  return create(ActualLRPSchema, {
    actualLrpKey: { processGuid: cr.spec.processGuid, index: cr.spec.index, domain: cr.spec.domain },
    actualLrpInstanceKey: { instanceGuid: st.instanceGuid ?? '', cellId: st.cellId ?? '' },
    actualLrpNetInfo: {
      address: net.address ?? '',
      ports: (net.ports ?? []).map((p) => ({
        containerPort: p.containerPort,
        hostPort: p.hostPort,
        containerTlsProxyPort: p.containerTlsProxyPort ?? 0,
        hostTlsProxyPort: p.hostTlsProxyPort ?? 0,
      })),
      instanceAddress: net.instanceAddress ?? '',
      instanceIpv6Address: net.instanceIpv6Address ?? '',
      preferredAddress: ActualLRPNetInfo_PreferredAddress[net.preferredAddress ?? 'UNKNOWN'],
    },
    crashCount: st.crashCount ?? 0,
    crashReason: st.crashReason ?? '',
    state: st.state ?? 'UNCLAIMED',
    placementError: st.placementError ?? '',
    since: ns(st.since ?? cr.metadata.creationTimestamp),
    modificationTag: { epoch: cr.metadata.uid ?? '', index: cr.metadata.generation ?? 0 },
    presence: ActualLRP_Presence[st.presence ?? 'ORDINARY'],
    actualLrpInternalRoutes: (st.internalRoutes ?? []).map((r) => ({ hostname: r.hostname })),
    metricTags: st.metricTags ?? {},
    availabilityZone: st.availabilityZone ?? '',
    ...(st.routable === undefined ? {} : { optionalRoutable: { case: 'routable' as const, value: st.routable } }),
  });
}

export { BbsFailure, Error_Type };
