// Kubernetes Events (core/v1) for decisions a user should see in `kubectl describe`. Recording never blocks
// or fails the caller: events go out in the background, a few at a time, and are dropped (and counted) when
// too many wait.
//
// As client-go's recorder does (its EventCorrelator), an event that repeats one recorded shortly before — same object,
// type, reason and message — is not a new Event but the old one's count and lastTimestamp (a merge patch; repeats
// that arrive while a write of that Event is on its way are folded into the next one), and each object gets at most
// a burst of SPAM_BURST events, then one per SPAM_REFILL_MS (the rest are dropped and counted).
import type { KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { isNotFound } from './resources.ts';
import { rawRequest } from './kube.ts';
import { registry } from './metrics.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

const dropped = new Counter({
  name: 'events_dropped_total',
  help: 'Events not recorded: too many waiting (queue) or too many for one object (spam)',
  labelNames: ['why'],
  registers: [registry],
});

/** client-go's spam filter: 25 events per object at once, then one every 5 minutes. */
export const SPAM_BURST = 25;
export const SPAM_REFILL_MS = 5 * 60_000;
/** How many distinct events (and objects) are remembered for correlation; the oldest are forgotten first. */
const MAX_REMEMBERED = 4096;

interface Recorded {
  name: string;
  namespace: string;
  body: Record<string, unknown>;
  /** Occurrences seen, and how many the stored Event says. */
  count: number;
  written: number;
  lastTimestamp: string;
  created: boolean;
  busy: boolean;
}

/** A Map that forgets its oldest entries beyond `max`. */
function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value as K);
}

export class EventRecorder {
  private readonly kc: KubeConfig;
  private readonly component: string;
  private readonly log: Logger;
  private readonly pending: (() => Promise<void>)[] = [];
  private inFlight = 0;
  private readonly maxPending = 1000;
  private readonly concurrency = 4;
  private readonly recent = new Map<string, Recorded>();
  private readonly tokens = new Map<string, { tokens: number; at: number }>();

  private readonly now: () => number;

  constructor(kc: KubeConfig, component: string, log: Logger, now: () => number = Date.now) {
    this.now = now;
    this.kc = kc;
    this.component = component;
    this.log = log;
  }

  /** Records a Normal or Warning event on `target` (a namespaced object). */
  record(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const namespace = target.metadata.namespace ?? 'default';
    const object = `${namespace}/${target.kind}/${target.metadata.name}/${target.metadata.uid ?? ''}`;
    if (!this.allow(object)) {
      dropped.inc({ why: 'spam' });
      return;
    }
    const text = message.slice(0, 1024);
    const key = `${object}\n${type}\n${reason}\n${text}`;
    const now = new Date(this.now()).toISOString();
    const seen = this.recent.get(key);
    if (seen) {
      seen.count++;
      seen.lastTimestamp = now;
      remember(this.recent, key, seen, MAX_REMEMBERED);
      if (!seen.busy) this.enqueue(seen);
      return;
    }
    const name = `${target.metadata.name}.${randomBytes(8).toString('hex')}`;
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name: target.metadata.name,
        // A cluster-scoped object's (a Cell's) Event lives in "default" but names no namespace: kubectl describe
        // looks it up by involvedObject.namespace="".
        namespace: target.metadata.namespace,
        uid: target.metadata.uid,
        resourceVersion: target.metadata.resourceVersion,
      },
      reason,
      message: text,
      type,
      source: { component: this.component },
      reportingComponent: this.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    const r: Recorded = {
      name,
      namespace,
      body,
      count: 1,
      written: 0,
      lastTimestamp: now,
      created: false,
      busy: false,
    };
    remember(this.recent, key, r, MAX_REMEMBERED);
    this.enqueue(r);
  }

  /** The object's token bucket (client-go: burst, then one per refill period). */
  private allow(object: string): boolean {
    const now = this.now();
    const b = this.tokens.get(object) ?? { tokens: SPAM_BURST, at: now };
    b.tokens = Math.min(SPAM_BURST, b.tokens + Math.floor((now - b.at) / SPAM_REFILL_MS));
    if (now - b.at >= SPAM_REFILL_MS) b.at = now;
    const ok = b.tokens > 0;
    if (ok) b.tokens--;
    remember(this.tokens, object, b, MAX_REMEMBERED);
    return ok;
  }

  private enqueue(r: Recorded): void {
    if (this.pending.length >= this.maxPending) {
      dropped.inc({ why: 'queue' });
      return;
    }
    r.busy = true;
    this.pending.push(() => this.write(r));
    this.drain();
  }

  /** Creates the Event, or brings its count and lastTimestamp up to date; repeats seen meanwhile go next. */
  private async write(r: Recorded): Promise<void> {
    const count = r.count;
    const lastTimestamp = r.lastTimestamp;
    const events = `/api/v1/namespaces/${r.namespace}/events`;
    let ok = false;
    try {
      if (r.created) {
        try {
          await rawRequest(this.kc, {
            method: 'PATCH',
            path: `${events}/${r.name}`,
            contentType: 'application/merge-patch+json',
            body: { count, lastTimestamp },
          });
        } catch (err) {
          if (!isNotFound(err)) throw err;
          r.created = false; // expired (Events live an hour): a new one with the same name
        }
      }
      if (!r.created) {
        await rawRequest(this.kc, { method: 'POST', path: events, body: { ...r.body, count, lastTimestamp } });
        r.created = true;
      }
      r.written = count;
      ok = true;
    } finally {
      r.busy = false;
      // Repeats that came while this write was on its way (a failed write is not retried, as before).
      if (ok && r.count > r.written) this.enqueue(r);
    }
  }

  private drain(): void {
    while (this.inFlight < this.concurrency && this.pending.length > 0) {
      const send = this.pending.shift()!;
      this.inFlight++;
      send()
        .catch((err: unknown) => this.log.debug({ err }, 'event not recorded'))
        .finally(() => {
          this.inFlight--;
          this.drain();
        });
    }
  }
}
