// Diego's own Go BBS client (code.cloudfoundry.org/bbs, unmodified) against the facade over plain HTTP:
// test/bbs-conformance runs a scenario of LRP, domain and task calls and prints "ok <step>" for each.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBbsApp } from '../../src/bbs/app.ts';
import { CachedDiegoClient } from '../../src/bbs/cached-client.ts';
import { API_SCENARIO_STEPS, runBbsClient } from '../support/bbs-go.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('bbs-go', { convergeIntervalMs: 1000 });
let app: ReturnType<typeof buildBbsApp>;
let url = '';
let reads: CachedDiegoClient;
beforeAll(async () => {
  // As `diego-operator bbs` runs it: reads from informer caches, consistent with its own writes.
  reads = new CachedDiegoClient(env.client.kc, { namespace: env.ns, log: env.log });
  await reads.start();
  app = buildBbsApp({ client: reads, namespace: env.ns, systemNamespace: env.systemNamespace, logger: env.log });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app.close();
  await reads.stop();
});

describe("Diego's Go BBS client", () => {
  it('runs the conformance scenario against the facade', { timeout: 300_000 }, async () => {
    const [cell] = await env.startCells(1, () => ({ stacks: ['cflinuxfs4'] }));
    const res = await runBbsClient(['-url', url, '-cell', cell!.o.cellId], 280_000);
    const { ok } = res;
    // stderr holds the failure message (and "go: downloading …" lines on a cold module cache).
    expect({ code: res.code, ok }, res.stderr.slice(-4000)).toEqual({ code: 0, ok: API_SCENARIO_STEPS });
  });
});
