// Which BBS events one change of a Diego CR makes, computed once per change and shared by every subscriber.
// Diego emits its events from the write paths (bbs events/calculator, controllers/*); we see the same changes
// as the informer's old and new objects, so we apply Diego's rules to those: created on add, removed on delete,
// changed when the BBS model differs, actual_lrp_crashed when the crash count goes up, and an instance that goes
// back to UNCLAIMED from a placement is a new instance (created + removed), as in Diego.
import { create, equals, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { desiredLRPToV0, taskDefinitionToV2 } from './downgrade.ts';
import * as m from './models.ts';
import { actualLRPFromCR, desiredLRPFromCR, taskFromCR } from './translate.ts';

/** The model versions a stream speaks: r1 routes send V3 models, the deprecated r0 routes older ones. */
export type ModelVersion = 'current' | 'legacy';

export interface BbsEvent {
  /** Diego's event type string (models/events.go), the SSE `event:` field. */
  readonly name: string;
  /** Cells the event concerns; undefined for events a cell filter never removes (desired LRP events). */
  readonly cellIds?: readonly string[];
  /** base64 (standard, padded) of the protobuf event, the SSE `data:` field. */
  payload(version: ModelVersion): string;
}

type Downgrade<S extends DescMessage> = () => MessageInitShape<S>;

function event<S extends DescMessage>(
  name: string,
  schema: S,
  init: MessageInitShape<S>,
  cellIds?: readonly string[],
  legacy?: Downgrade<S>,
): BbsEvent {
  const cache: Partial<Record<ModelVersion, string>> = {};
  return {
    name,
    cellIds,
    payload(version) {
      const shape = version === 'legacy' && legacy ? legacy() : init;
      return (cache[version] ??= Buffer.from(toBinary(schema, create(schema, shape))).toString('base64'));
    },
  };
}

export function desiredLRPEvents(
  before: IDesiredLRP | undefined,
  after: IDesiredLRP | undefined,
  legacyDesired: (lrp: m.DesiredLRP) => m.DesiredLRP = desiredLRPToV0,
): BbsEvent[] {
  const b = before && desiredLRPFromCR(before);
  const a = after && desiredLRPFromCR(after);
  if (a && b) {
    if (equals(m.DesiredLRPSchema, a, b)) return [];
    return [
      event('desired_lrp_changed', m.DesiredLRPChangedEventSchema, { before: b, after: a }, undefined, () => ({
        before: legacyDesired(b),
        after: legacyDesired(a),
      })),
    ];
  }
  if (a) {
    return [
      event('desired_lrp_created', m.DesiredLRPCreatedEventSchema, { desiredLrp: a }, undefined, () => ({
        desiredLrp: legacyDesired(a),
      })),
    ];
  }
  if (b) {
    return [
      event('desired_lrp_removed', m.DesiredLRPRemovedEventSchema, { desiredLrp: b }, undefined, () => ({
        desiredLrp: legacyDesired(b),
      })),
    ];
  }
  return [];
}

/** The mutable part of an ActualLRP, as ActualLRPInstanceChangedEvent carries it (models ToActualLRPInfo). */
function infoOf(lrp: m.ActualLRP): MessageInitShape<typeof m.ActualLRPInfoSchema> {
  return {
    actualLrpNetInfo: lrp.actualLrpNetInfo,
    crashCount: lrp.crashCount,
    crashReason: lrp.crashReason,
    state: lrp.state,
    placementError: lrp.placementError,
    since: lrp.since,
    modificationTag: lrp.modificationTag,
    presence: lrp.presence,
    availabilityZone: lrp.availabilityZone,
    ...(lrp.optionalRoutable.case
      ? { optionalRoutable: { case: 'Routable' as const, value: lrp.optionalRoutable.value } }
      : {}),
  };
}

const cellOf = (lrp: m.ActualLRP) => lrp.actualLrpInstanceKey?.cellId ?? '';
const isEmptyKey = (k: m.ActualLRPInstanceKey | undefined) => !k || (!k.instanceGuid && !k.cellId);

const crashed = (b: m.ActualLRP, a: m.ActualLRP) =>
  event(
    'actual_lrp_crashed',
    m.ActualLRPCrashedEventSchema,
    {
      actualLrpKey: a.actualLrpKey,
      actualLrpInstanceKey: b.actualLrpInstanceKey,
      crashCount: a.crashCount,
      crashReason: a.crashReason,
      since: a.since,
    },
    [cellOf(b)],
  );

const instanceCreated = (a: m.ActualLRP) =>
  event('actual_lrp_instance_created', m.ActualLRPInstanceCreatedEventSchema, { actualLrp: a }, [cellOf(a)]);
const instanceRemoved = (b: m.ActualLRP) =>
  event('actual_lrp_instance_removed', m.ActualLRPInstanceRemovedEventSchema, { actualLrp: b }, [cellOf(b)]);
function instanceChanged(b: m.ActualLRP, a: m.ActualLRP): BbsEvent {
  // Diego's NewActualLRPInstanceChangedEvent: the after keys unless empty, else the before keys.
  const instanceKey = isEmptyKey(a.actualLrpInstanceKey) ? b.actualLrpInstanceKey : a.actualLrpInstanceKey;
  return event(
    'actual_lrp_instance_changed',
    m.ActualLRPInstanceChangedEventSchema,
    {
      actualLrpKey: a.actualLrpKey ?? b.actualLrpKey,
      actualLrpInstanceKey: instanceKey,
      before: infoOf(b),
      after: infoOf(a),
    },
    [instanceKey?.cellId ?? ''],
  );
}

const group = (lrp: m.ActualLRP): MessageInitShape<typeof m.ActualLRPGroupSchema> =>
  lrp.presence === m.ActualLRP_Presence.EVACUATING ? { evacuating: lrp } : { instance: lrp };
const groupCreated = (a: m.ActualLRP) =>
  event('actual_lrp_created', m.ActualLRPCreatedEventSchema, { actualLrpGroup: group(a) }, [cellOf(a)]);
const groupRemoved = (b: m.ActualLRP) =>
  event('actual_lrp_removed', m.ActualLRPRemovedEventSchema, { actualLrpGroup: group(b) }, [cellOf(b)]);
const groupChanged = (b: m.ActualLRP, a: m.ActualLRP) =>
  event('actual_lrp_changed', m.ActualLRPChangedEventSchema, { before: group(b), after: group(a) }, [
    cellOf(b),
    cellOf(a),
  ]);

/** Diego's EventScore: crashed events first, then created/changed events whose instance is RUNNING (removed
 * events carry no instance to score), then the rest, in the order made. */
function ordered(events: Array<{ ev: BbsEvent; lrp?: m.ActualLRP }>): BbsEvent[] {
  const score = (e: { ev: BbsEvent; lrp?: m.ActualLRP }) =>
    e.ev.name === 'actual_lrp_crashed' ? 2 : e.lrp?.state === 'RUNNING' ? 1 : 0;
  return events.sort((x, y) => score(y) - score(x)).map((e) => e.ev);
}

export interface ActualLRPEvents {
  /** For the instance streams (lrp_instances.r1): actual_lrp_instance_* and actual_lrp_crashed. */
  instance: BbsEvent[];
  /** For the deprecated group streams (events.r1): actual_lrp_created/changed/removed and actual_lrp_crashed. */
  group: BbsEvent[];
}

export function actualLRPEvents(before: IActualLRP | undefined, after: IActualLRP | undefined): ActualLRPEvents {
  const b = before && actualLRPFromCR(before);
  const a = after && actualLRPFromCR(after);
  if (!a && !b) return { instance: [], group: [] };
  if (!a) return { instance: [instanceRemoved(b!)], group: [groupRemoved(b!)] };
  if (!b) return { instance: [instanceCreated(a)], group: [groupCreated(a)] };
  if (equals(m.ActualLRPSchema, a, b)) return { instance: [], group: [] };

  // Diego emits actual_lrp_crashed from CrashActualLRP, which always counts the crash; a CRASHED state reached
  // any other way is reported as a crash too (calculator generateCrashedInstanceEvents).
  const didCrash = a.crashCount > b.crashCount || (a.state === 'CRASHED' && b.state !== 'CRASHED');
  const instance: Array<{ ev: BbsEvent; lrp?: m.ActualLRP }> = [];
  const grp: Array<{ ev: BbsEvent; lrp?: m.ActualLRP }> = [];
  if (didCrash) {
    instance.push({ ev: crashed(b, a) });
    grp.push({ ev: crashed(b, a) });
  }
  if (a.state === 'UNCLAIMED' && b.state !== 'UNCLAIMED') {
    // Back to waiting for placement: the placed instance is gone and a new one waits (new instance guid).
    instance.push({ ev: instanceCreated(a), lrp: a }, { ev: instanceRemoved(b) });
    grp.push({ ev: groupChanged(b, a), lrp: a });
  } else {
    instance.push({ ev: instanceChanged(b, a), lrp: a });
    const moved =
      a.state !== 'UNCLAIMED' &&
      a.state !== 'CRASHED' &&
      !isEmptyKey(b.actualLrpInstanceKey) &&
      !equals(m.ActualLRPInstanceKeySchema, a.actualLrpInstanceKey!, b.actualLrpInstanceKey!);
    if (moved) grp.push({ ev: groupCreated(a), lrp: a }, { ev: groupRemoved(b) });
    else grp.push({ ev: groupChanged(b, a), lrp: a });
  }
  return { instance: ordered(instance), group: ordered(grp) };
}

const taskToV2 = (t: m.Task): m.Task =>
  t.taskDefinition ? { ...t, taskDefinition: taskDefinitionToV2(t.taskDefinition) } : t;

export function taskEvents(before: ITask | undefined, after: ITask | undefined): BbsEvent[] {
  const b = before && taskFromCR(before);
  const a = after && taskFromCR(after);
  if (a && b) {
    if (equals(m.TaskSchema, a, b)) return [];
    return [
      event('task_changed', m.TaskChangedEventSchema, { before: b, after: a }, undefined, () => ({
        before: taskToV2(b),
        after: taskToV2(a),
      })),
    ];
  }
  if (a)
    return [event('task_created', m.TaskCreatedEventSchema, { task: a }, undefined, () => ({ task: taskToV2(a) }))];
  if (b)
    return [event('task_removed', m.TaskRemovedEventSchema, { task: b }, undefined, () => ({ task: taskToV2(b) }))];
  return [];
}
