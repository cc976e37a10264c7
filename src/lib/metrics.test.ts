import { Counter } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { registry, startOpsServer, type OpsServer } from './metrics.ts';

describe('ops server', () => {
  let server: OpsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves Prometheus text with default and registered metrics', async () => {
    const c = new Counter({ name: 'test_things_total', help: 'things', registers: [registry] });
    c.inc(3);
    server = await startOpsServer({ port: 0 });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('test_things_total 3');
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    registry.removeSingleMetric('test_things_total');
  });

  it('answers /healthz with ok', async () => {
    server = await startOpsServer({ port: 0 });
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });

  it('answers /readyz from ready()', async () => {
    let ready = false;
    server = await startOpsServer({ port: 0, ready: () => ready });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    ready = true;
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });

  it('treats a throwing ready() as not ready and is ready without one', async () => {
    server = await startOpsServer({
      port: 0,
      ready: () => {
        throw new Error('nope');
      },
    });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    await server.close();
    server = await startOpsServer({ port: 0 });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it('close() frees the port', async () => {
    server = await startOpsServer({ port: 0 });
    const { url } = server;
    await server.close();
    server = undefined;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
