// End to end, logs and metrics (#4.5): a cell agent running real runc containers serves its instances' log
// lines as a live NDJSON stream per log guid, cuts a chatty instance to the operator's lines-per-second limit
// with Diego's notice, and shows each container's cpu and memory on /metrics until the instance is gone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEnvelope } from '../../src/cell-agent/logs/envelope.ts';
import { registerLogRoutes } from '../../src/cell-agent/logs/stream-server.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import type { IActualLRP, IDesiredLRP } from '../../src/crds/models.ts';
import { startOpsServer, type OpsServer } from '../../src/lib/metrics.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { deleteLink, runcBackend, testRep } from '../support/runc-cell.ts';

const env = useDiego('e2elogs', { convergeIntervalMs: 2000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'diego-e2e-logs-'));
const prefix = `e2elogs${process.pid}-`;
const bridge = `dlog${process.pid % 10000}`;
const cellId = `e2e-logs-cell-${process.pid}`;
const LINES_PER_SECOND = 20;
let rep: Rep;
let ops: OpsServer;

beforeAll(async () => {
  const backend = runcBackend({
    stateDir: path.join(dir, 'state'),
    idPrefix: prefix,
    networkName: `e2elogs-${process.pid}`,
    bridge,
    subnet: 229,
    ipamDataDir: path.join(dir, 'ipam'),
  });
  rep = testRep(env, backend, {
    cellId,
    telemetry: { maxLogLinesPerSecond: LINES_PER_SECOND, containerMetricsIntervalMs: 1000 },
  });
  await rep.start();
  ops = await startOpsServer({ port: 0, routes: (app) => registerLogRoutes(app, rep.telemetry.hub) });
}, 120_000);

afterAll(async () => {
  await ops?.close();
  await rep?.stop();
  deleteLink(bridge);
  rmSync(dir, { recursive: true, force: true });
});

/** Follows a log guid's stream in the test's namespace (the route a namespace's log-reader may read) and collects its envelopes until stopped. */
async function follow(logGuid: string): Promise<{ lines: LogEnvelope[]; stop: () => void }> {
  const abort = new AbortController();
  const res = await fetch(`${ops.url}/v1/namespaces/${env.ns}/logs/${logGuid}?follow=true`, { signal: abort.signal });
  expect(res.status).toBe(200);
  const lines: LogEnvelope[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buffered.slice(0, nl)) as LogEnvelope);
          buffered = buffered.slice(nl + 1);
        }
      }
    } catch {
      // aborted
    }
  })();
  await eventually(() => expect(rep.telemetry.hub.subscriberCount(`${env.ns}/${logGuid}`)).toBeGreaterThan(0), 5_000);
  return { lines, stop: () => abort.abort() };
}

const app = (
  name: string,
  instances: number,
  script: string,
  extra: Partial<IDesiredLRP['spec']> = {},
): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
  metadata: { name, namespace: env.ns },
  spec: {
    processGuid: name,
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances,
    memoryMb: 64,
    diskMb: 128,
    logGuid: `${name}-log`,
    logSource: 'CELL',
    metricTags: {
      source_id: { static: `${name}-log` },
      app_name: { static: name },
      instance_id: { dynamic: 'INDEX' },
      process_instance_id: { dynamic: 'INSTANCE_GUID' },
    },
    action: { run: { path: '/bin/sh', args: ['-c', script], user: 'root', logSource: 'APP/PROC/WEB' } },
    ...extra,
  },
});

const instances = (): Promise<IActualLRP[]> => client.list('ActualLRP', { namespace: env.ns });

async function metricsText(): Promise<string> {
  return (await fetch(`${ops.url}/metrics`)).text();
}

function metricValue(text: string, name: string, instanceGuid: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`instance_guid="${instanceGuid}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('runc end to end: logs and metrics', () => {
  it("streams each instance's lines with its tags and index, and the cell's lifecycle lines, live", async () => {
    const stream = await follow('talker-log');
    // The container's hostname is its instance guid: each line says which container printed it.
    await client.create(
      'DesiredLRP',
      app('talker', 2, 'echo "hello from $(hostname)"; echo "complaint from $(hostname)" >&2; exec sleep 3600'),
    );
    const running = await eventually(async () => {
      const all = (await instances()).filter((a) => a.status?.state === 'RUNNING');
      expect(all).toHaveLength(2);
      return all;
    }, 60_000);
    for (const a of running) {
      const guid = a.status!.instanceGuid!;
      const index = String(a.spec.index);
      const mine = await eventually(() => {
        const lines = stream.lines.filter((e) => e.log.payload.endsWith(guid) || e.tags.process_instance_id === guid);
        expect(lines.map((e) => e.log.payload)).toEqual(
          expect.arrayContaining([
            `Cell ${cellId} creating container for instance ${guid}`,
            `Cell ${cellId} successfully created container for instance ${guid}`,
            `hello from ${guid}`,
            `complaint from ${guid}`,
          ]),
        );
        return lines;
      }, 20_000);
      for (const e of mine) {
        expect(e).toMatchObject({
          source_id: 'talker-log',
          instance_id: index,
          tags: { app_name: 'talker', process_instance_id: guid },
        });
        expect(BigInt(e.timestamp)).toBeGreaterThan(BigInt(Date.now() - 120_000) * 1_000_000n);
      }
      const byPayload = new Map(mine.map((e) => [e.log.payload, e]));
      expect(byPayload.get(`hello from ${guid}`)).toMatchObject({
        tags: { source_type: 'APP/PROC/WEB' },
        log: { type: 'OUT' },
      });
      expect(byPayload.get(`complaint from ${guid}`)).toMatchObject({
        tags: { source_type: 'APP/PROC/WEB' },
        log: { type: 'ERR' },
      });
      expect(byPayload.get(`Cell ${cellId} creating container for instance ${guid}`)).toMatchObject({
        tags: { source_type: 'CELL' },
        log: { type: 'OUT' },
      });
    }

    // Recent logs: the same lines, without following.
    const recent = (await (await fetch(`${ops.url}/v1/logs/talker-log`)).text()).trim().split('\n');
    expect(recent.length).toBeGreaterThanOrEqual(8);

    // Container metrics for both containers, while they run.
    const text = await eventually(async () => {
      const t = await metricsText();
      for (const a of running) {
        expect(metricValue(t, 'container_memory', a.status!.instanceGuid!)).toBeGreaterThan(0);
        expect(metricValue(t, 'container_absolute_usage', a.status!.instanceGuid!)).toBeGreaterThan(0);
      }
      // The cell's own gauges are refreshed on their own schedule.
      expect(t).toContain(`CapacityRemainingMemory{cell_id="${cellId}"} ${4096 - 2 * 64}`);
      expect(t).toContain(`ContainerCount{cell_id="${cellId}"} 2`);
      return t;
    }, 20_000);
    const guid0 = running[0]!.status!.instanceGuid!;
    expect(metricValue(text, 'container_memory_quota', guid0)).toBe(64 * 1024 * 1024);
    expect(metricValue(text, 'container_disk_quota', guid0)).toBe(128 * 1024 * 1024);
    expect(metricValue(text, 'container_disk', guid0)).toBeGreaterThanOrEqual(0);
    expect(metricValue(text, 'container_log_rate_limit', guid0)).toBe(-1); // no logRateLimit on the LRP
    expect(text).toMatch(
      new RegExp(
        `container_memory\\{source_id="talker-log",instance_id="\\d",process_guid="talker",instance_guid="${guid0}"\\}`,
      ),
    );

    // Deleting the app: the cell says it stops and destroys each container, and their metrics disappear.
    await client.delete('DesiredLRP', { namespace: env.ns, name: 'talker' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
    for (const a of running) {
      const guid = a.status!.instanceGuid!;
      await eventually(
        () =>
          expect(stream.lines.map((e) => e.log.payload)).toEqual(
            expect.arrayContaining([
              `Cell ${cellId} stopping instance ${guid}`,
              `Cell ${cellId} destroying container for instance ${guid}`,
              `Cell ${cellId} successfully destroyed container for instance ${guid}`,
            ]),
          ),
        20_000,
      );
    }
    stream.stop();
    await eventually(async () => {
      const after = await metricsText();
      for (const a of running) expect(metricValue(after, 'container_memory', a.status!.instanceGuid!)).toBeUndefined();
      expect(after).toContain(`ContainerCount{cell_id="${cellId}"} 0`);
    }, 20_000);
  }, 120_000);

  it("cuts an instance that logs too fast to the cell's lines-per-second limit, with Diego's notice", async () => {
    const stream = await follow('chatty-log');
    await client.create('DesiredLRP', app('chatty', 1, 'i=0; while true; do i=$((i+1)); echo "line $i"; done'));
    await eventually(() => expect(stream.lines.some((e) => e.log.payload.startsWith('line '))).toBe(true), 60_000);
    const start = Date.now();
    const isNotice = (e: LogEnvelope) =>
      e.tags.source_type === 'APP/PROC/WEB' && e.log.payload.startsWith('app instance exceeded');
    const noticeSince = (e: LogEnvelope) => isNotice(e) && Number(BigInt(e.timestamp) / 1_000_000n) >= start;
    // Watched for at least 3 s and until the limit cut it twice (a loaded machine may run the app slowly).
    await new Promise((r) => setTimeout(r, 3000));
    await eventually(() => expect(stream.lines.filter(noticeSince).length).toBeGreaterThanOrEqual(2), 60_000);
    const elapsedS = (Date.now() - start) / 1000;
    stream.stop();

    const appLines = stream.lines.filter((e) => e.tags.source_type === 'APP/PROC/WEB');
    const printed = appLines.filter((e) => e.log.payload.startsWith('line '));
    const notices = appLines.filter((e) => e.log.payload.startsWith('app instance exceeded'));
    expect(notices[0]?.log.payload).toBe(
      `app instance exceeded log rate limit (${LINES_PER_SECOND} log-lines/sec) set by platform operator`,
    );
    expect(notices[0]).toMatchObject({ source_id: 'chatty-log', instance_id: '0', log: { type: 'OUT' } });
    // The app printed far more than got through: the sequence numbers have gaps.
    const firstSeq = Number(printed[0]!.log.payload.slice(5));
    const lastSeq = Number(printed.at(-1)!.log.payload.slice(5));
    expect(lastSeq - firstSeq + 1).toBeGreaterThan(printed.length * 2);
    // While watched: at most one second's burst plus the rate, and at most one notice a second.
    const since = (e: LogEnvelope) => Number(BigInt(e.timestamp) / 1_000_000n) >= start;
    expect(printed.filter(since).length).toBeLessThanOrEqual(LINES_PER_SECOND * (elapsedS + 1) + 1);
    expect(notices.filter(since).length).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
    expect(await (await fetch(`${ops.url}/metrics`)).text()).toMatch(/AppInstanceExceededLogRateLimitCount [1-9]/);

    // Its log rate shows on /metrics: about the limit's worth of bytes a second ("line NNNN" ≈ 10 bytes).
    const [chatty] = await instances();
    await eventually(async () => {
      const rate = metricValue(await metricsText(), 'container_log_rate', chatty!.status!.instanceGuid!);
      expect(rate).toBeGreaterThan(0);
      expect(rate).toBeLessThan(LINES_PER_SECOND * 64);
    }, 20_000);

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'chatty' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
  }, 120_000);
});
