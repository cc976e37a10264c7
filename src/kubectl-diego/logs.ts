// `kubectl diego logs`, the pure parts: which cells hold an app's or a task's log lines, how a Loggregator-style
// envelope prints (as `cf logs` prints it), and how the lines of several cells are put in time order.
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import { cellOfActual, cellOfTask } from './views.ts';
import { paint } from './output.ts';

/** The envelope the cell agents stream (src/cell-agent/logs/envelope.ts), as read off the wire. */
export interface LogLine {
  /** Nanoseconds since the epoch, as a decimal string. */
  timestamp: string;
  source_id: string;
  instance_id: string;
  tags: Record<string, string>;
  log: { payload: string; type: 'OUT' | 'ERR' };
}

/** The most cells one `logs` call connects to. */
export const MAX_LOG_CELLS = 32;

export interface LogTarget {
  kind: 'DesiredLRP' | 'Task';
  namespace: string;
  name: string;
  /** The stream the cells keep the lines under (logGuid, else the process or task guid, as the agent does). */
  logGuid: string;
  /** The cells holding its instances (ids, sorted). */
  cellIds: string[];
}

/** The log stream of a DesiredLRP and the cells running its instances (every copy: ordinary, evacuating, suspect). */
export function lrpLogTarget(d: IDesiredLRP, actuals: IActualLRP[], instance?: number): LogTarget {
  const cells = actuals
    .filter((a) => a.spec.processGuid === d.spec.processGuid && a.metadata.namespace === d.metadata.namespace)
    .filter((a) => instance === undefined || a.spec.index === instance)
    .map(cellOfActual)
    .filter((c): c is string => !!c);
  return {
    kind: 'DesiredLRP',
    namespace: d.metadata.namespace ?? '',
    name: d.metadata.name ?? '',
    logGuid: d.spec.logGuid || d.spec.processGuid,
    cellIds: [...new Set(cells)].sort(),
  };
}

export function taskLogTarget(t: ITask): LogTarget {
  const cell = cellOfTask(t);
  return {
    kind: 'Task',
    namespace: t.metadata.namespace ?? '',
    name: t.metadata.name ?? '',
    logGuid: t.spec.logGuid || t.spec.taskGuid,
    cellIds: cell ? [cell] : [],
  };
}

export interface LogSource {
  cellId: string;
  /** The stream's URL on the cell's ops server. */
  url: string;
}

/**
 * The stream URL on each cell (at most `max`), and what cannot be read: cells without a Cell object or without an
 * advertised ops server (an agent older than spec.opsUrl).
 */
export function logSources(
  target: LogTarget,
  cells: ICell[],
  opts: { follow: boolean; recent: boolean; max?: number },
): { sources: LogSource[]; problems: string[] } {
  const byId = new Map(cells.map((c) => [c.spec.cellId, c]));
  const sources: LogSource[] = [];
  const problems: string[] = [];
  const max = opts.max ?? MAX_LOG_CELLS;
  for (const cellId of target.cellIds) {
    const ops = byId.get(cellId)?.spec.opsUrl;
    if (!byId.has(cellId)) problems.push(`cell ${cellId} is not registered (no Cell object): its lines are not read`);
    else if (!ops)
      problems.push(`cell ${cellId} does not advertise its log stream (spec.opsUrl): its lines are not read`);
    else if (sources.length >= max) problems.push(`cell ${cellId} not read: at most ${max} cells are read at once`);
    else {
      const q = new URLSearchParams({ recent: String(opts.recent), ...(opts.follow ? { follow: 'true' } : {}) });
      const path = `/v1/namespaces/${encodeURIComponent(target.namespace)}/logs/${encodeURIComponent(target.logGuid)}`;
      sources.push({ cellId, url: `${ops.replace(/\/+$/, '')}${path}?${q.toString()}` });
    }
  }
  return { sources, problems };
}

/** One line of ndjson as an envelope, or undefined when it is not one. */
export function parseLogLine(text: string): LogLine | undefined {
  if (text.trim() === '') return undefined;
  try {
    const e = JSON.parse(text) as Partial<LogLine>;
    if (typeof e.timestamp !== 'string' || !/^\d+$/.test(e.timestamp) || typeof e.log?.payload !== 'string') {
      return undefined;
    }
    return {
      timestamp: e.timestamp,
      source_id: e.source_id ?? '',
      instance_id: e.instance_id ?? '',
      tags: e.tags ?? {},
      log: { payload: e.log.payload, type: e.log.type === 'ERR' ? 'ERR' : 'OUT' },
    };
  } catch {
    return undefined;
  }
}

export const keepInstance = (e: LogLine, instance: number | undefined): boolean =>
  instance === undefined || e.instance_id === String(instance);

const ns = (e: LogLine): bigint => BigInt(e.timestamp);
const byTime = (a: LogLine, b: LogLine): number => {
  const d = ns(a) - ns(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

/** The lines of several cells in one time order (each cell's stream is in order already; ties keep cell order). */
export function mergeByTime(streams: LogLine[][]): LogLine[] {
  return streams.flat().sort(byTime);
}

/** cf logs' time: "2026-12-06T10:00:00.00+0000" (hundredths of a second, UTC here). */
export function cfTime(timestampNs: string): string {
  const ms = Number(BigInt(timestampNs) / 1_000_000n);
  return `${new Date(ms).toISOString().slice(0, 22)}+0000`;
}

/** As `cf logs` prints a line: time, [SOURCE_TYPE/INSTANCE], OUT or ERR, the text. */
export function formatLogLine(e: LogLine, colour = false): string {
  const source = e.tags.source_type || 'LOG';
  const label = `[${source}/${e.instance_id}]`;
  const payload = e.log.payload.replace(/\r?\n$/, '');
  const type = paint(e.log.type, e.log.type === 'ERR' ? 'red' : undefined, colour);
  return `   ${paint(cfTime(e.timestamp), 'grey', colour)} ${paint(label, 'bold', colour)} ${type} ${payload}`;
}

/**
 * Puts lines arriving from several live streams in time order: a line is held `windowMs` after it arrives, so a
 * line of another cell written just before it (and delayed on the way) can still go first. Lines released
 * together come out in time order; a line later than its window prints when it arrives.
 */
export class ReorderBuffer {
  readonly #windowMs: number;
  #held: { line: LogLine; at: number }[] = [];

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  push(line: LogLine, arrivedAt: number): void {
    this.#held.push({ line, at: arrivedAt });
  }

  /** The lines due at `now` (all of them with `flush`), in time order. */
  release(now: number, flush = false): LogLine[] {
    const due = flush ? this.#held : this.#held.filter((h) => h.at + this.#windowMs <= now);
    if (due.length === 0) return [];
    this.#held = flush ? [] : this.#held.filter((h) => h.at + this.#windowMs > now);
    return due.map((h) => h.line).sort(byTime);
  }

  get size(): number {
    return this.#held.length;
  }
}

/**
 * Whether the kubeconfig's bearer token may be sent to a cell's log stream at `url`: only when its host is one of the
 * addresses of the Node the cell is named after. A Cell's spec.opsUrl is written by its agent; a compromised agent
 * could name a server of its own and collect the tokens of whoever reads logs, but it cannot change its Node's
 * addresses.
 */
export function vouchedFor(url: string, nodeAddresses: readonly string[] | undefined): boolean {
  if (!nodeAddresses) return false;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return nodeAddresses.includes(host);
}
