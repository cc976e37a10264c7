// A log line as Loggregator carries it: a v2 envelope with the log guid as source_id, the instance index as
// instance_id, and tags (the DesiredLRP's or Task's metric tags resolved for this instance, plus source_type).
// Diego builds these tags in the rep (bbs models.ConvertMetricTags) and in executor LogConfig
// (GetSourceNameAndTagsForLogging: source_id and instance_id default to the log guid and the index); the
// logging client adds source_type. The JSON form follows the v2 envelope's field names, with one difference:
// log.payload is plain UTF-8 text here, not base64, so a `curl` of the stream is readable.

/** Diego's per-instance metric tag values: a literal, or the instance's index or instance guid. */
export interface MetricTagValue {
  static?: string;
  dynamic?: 'INDEX' | 'INSTANCE_GUID';
}

export type LogType = 'OUT' | 'ERR';

export interface LogEnvelope {
  /** Nanoseconds since the epoch, as a decimal string (int64 does not fit a JSON number). */
  timestamp: string;
  /** The log guid (or the source_id metric tag when the LRP sets one). */
  source_id: string;
  /** The instance index ("0" for tasks). */
  instance_id: string;
  /** The metric tags of the instance plus source_type (APP/PROC/WEB, CELL, HEALTH, STG, ...). */
  tags: Record<string, string>;
  log: { payload: string; type: LogType };
}

/**
 * Resolves metric tags for one instance (bbs models.ConvertMetricTags): INDEX becomes the index, INSTANCE_GUID
 * the instance guid (tasks have neither: Diego leaves those tags out).
 */
export function resolveMetricTags(
  tags: Record<string, MetricTagValue> | undefined,
  instance: { index?: number; instanceGuid?: string },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags ?? {})) {
    if (v.dynamic === 'INDEX') {
      if (instance.index !== undefined) out[k] = String(instance.index);
    } else if (v.dynamic === 'INSTANCE_GUID') {
      if (instance.instanceGuid !== undefined) out[k] = instance.instanceGuid;
    } else {
      out[k] = v.static ?? '';
    }
  }
  return out;
}

/** The tags of every line of an instance: its metric tags, with source_id and instance_id filled in if absent. */
export function logTags(logGuid: string, index: number, metricTags: Record<string, string>): Record<string, string> {
  return {
    ...metricTags,
    source_id: metricTags.source_id ?? logGuid,
    instance_id: metricTags.instance_id ?? String(index),
  };
}

/** Nanoseconds since the epoch from a millisecond clock (plus a sub-millisecond part from hrtime). */
export function nowNs(nowMs: number = Date.now()): string {
  const sub = process.hrtime.bigint() % 1_000_000n;
  return (BigInt(Math.floor(nowMs)) * 1_000_000n + sub).toString();
}

export function logEnvelope(
  tags: Record<string, string>,
  sourceType: string,
  type: LogType,
  payload: string,
  timestamp: string = nowNs(),
): LogEnvelope {
  const { source_id = '', instance_id = '', ...rest } = tags;
  return { timestamp, source_id, instance_id, tags: { ...rest, source_type: sourceType }, log: { payload, type } };
}
