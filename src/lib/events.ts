// Kubernetes Events (core/v1) for decisions a user should see in `kubectl describe`. Recording never blocks
// or fails the caller: events go out in the background, a few at a time, and are dropped (and counted) when
// too many wait.
import type { KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { rawRequest } from './kube.ts';
import { registry } from './metrics.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

const dropped = new Counter({
  name: 'events_dropped_total',
  help: 'Events not recorded because too many were waiting',
  registers: [registry],
});

export class EventRecorder {
  private readonly kc: KubeConfig;
  private readonly component: string;
  private readonly log: Logger;
  private readonly pending: (() => Promise<void>)[] = [];
  private inFlight = 0;
  private readonly maxPending = 1000;
  private readonly concurrency = 4;

  constructor(kc: KubeConfig, component: string, log: Logger) {
    this.kc = kc;
    this.component = component;
    this.log = log;
  }

  /** Records a Normal or Warning event on `target` (a namespaced object). */
  record(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const namespace = target.metadata.namespace ?? 'default';
    if (this.pending.length >= this.maxPending) {
      dropped.inc();
      return;
    }
    const now = new Date().toISOString();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${target.metadata.name}.${randomBytes(8).toString('hex')}`, namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name: target.metadata.name,
        namespace,
        uid: target.metadata.uid,
        resourceVersion: target.metadata.resourceVersion,
      },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: this.component },
      reportingComponent: this.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.pending.push(() =>
      rawRequest(this.kc, { method: 'POST', path: `/api/v1/namespaces/${namespace}/events`, body }).then(
        () => undefined,
      ),
    );
    this.drain();
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
