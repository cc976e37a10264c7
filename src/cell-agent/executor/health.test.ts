import { createServer, type Server } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../backends/process.ts';
import { eventually, failure, loopback, testCell, type Loopback, type TestCell } from '../testing.ts';
import { LogStreamer, type LogMessage } from './log.ts';
import {
  checkTargetFor,
  HealthCheckError,
  HealthCheckStep,
  httpCheck,
  probesFromChecks,
  startupThenLiveness,
  tcpCheck,
} from './health.ts';
import { CodependentStep } from './steps/codependent.ts';
import { RunStep } from './steps/run.ts';

const local = (port: number) => ({ host: '127.0.0.1', port });

let http: Loopback;
let status: number;
let hang: boolean;
let requests: { url?: string; ua?: string; proto?: string }[];

beforeEach(async () => {
  status = 200;
  hang = false;
  requests = [];
  http = await loopback((req, res) => {
    requests.push({ url: req.url, ua: req.headers['user-agent'], proto: req.headers['x-forwarded-proto'] as string });
    if (hang) return;
    if (req.url === '/old') res.writeHead(302, { Location: '/new' }).end();
    else res.writeHead(status).end('body');
  });
});
afterEach(() => http.close());

async function tcpServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

describe('tcp check', () => {
  it('is healthy when a connection succeeds', async () => {
    const { server, port } = await tcpServer();
    await tcpCheck(local(port), 1_000);
    server.close();
  });

  it('reports a refused connection like the healthcheck binary', async () => {
    const port = await freePort();
    const err = await failure(() => tcpCheck(local(port), 1_000));
    expect(err).toBeInstanceOf(HealthCheckError);
    expect(err).toMatchObject({ code: 4 });
    expect(err.message).toBe(
      `failed to make TCP connection to 127.0.0.1:${port}: dial tcp 127.0.0.1:${port}: connect: connection refused`,
    );
  });
});

describe('http check', () => {
  it('is healthy on 200, GETs / by default with the healthcheck headers, and follows redirects', async () => {
    await httpCheck(local(http.port), '', 1_000);
    await httpCheck(local(http.port), '/old', 1_000);
    expect(requests).toEqual([
      { url: '/', ua: 'diego-healthcheck', proto: 'https' },
      { url: '/old', ua: 'diego-healthcheck', proto: 'https' },
      { url: '/new', ua: 'diego-healthcheck', proto: 'https' },
    ]);
  });

  it('is unhealthy on any other status', async () => {
    status = 503;
    const err = await failure(() => httpCheck(local(http.port), '/health', 1_000));
    expect(err).toMatchObject({ code: 6 });
    expect(err.message).toMatch(
      new RegExp(`^failed to make HTTP request to '/health' on port ${http.port}: received status code 503 in \\d+ms$`),
    );
  });

  it('times out per attempt', async () => {
    hang = true;
    const started = Date.now();
    const err = await failure(() => httpCheck(local(http.port), '/', 200));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err).toMatchObject({ code: 65 });
    expect(err.message).toBe(`failed to make HTTP request to '/' on port ${http.port}: timed out after 0.20 seconds`);
  });

  it('reports "connection refused" when nothing answers', async () => {
    const port = await freePort();
    const err = await failure(() => httpCheck(local(port), '/', 1_000));
    expect(err).toMatchObject({
      code: 5,
      message: `failed to make HTTP request to '/' on port ${port}: connection refused`,
    });
  });
});

describe('startup then liveness', () => {
  let logs: LogMessage[];
  let log: LogStreamer;
  let healthLog: LogStreamer;
  beforeEach(() => {
    logs = [];
    log = new LogStreamer((m) => logs.push(m), 'CELL');
    healthLog = new LogStreamer((m) => logs.push(m), 'HEALTH');
  });

  it('polls until healthy, then until the first failure', async () => {
    status = 500;
    let healthy = false;
    const probes = probesFromChecks([{ httpCheck: { port: 8080, path: '/ping' } }], () => local(http.port), {
      livenessIntervalMs: 30,
    });
    const monitoring = startupThenLiveness(
      { probes, startTimeoutMs: 5_000, startupIntervalMs: 30, log, healthLog },
      new AbortController().signal,
      () => (healthy = true),
    ).catch((e: unknown) => e as Error);
    await eventually(() => requests.length >= 3);
    expect(healthy).toBe(false);
    status = 200;
    await eventually(() => healthy);
    status = 502;
    const err = (await monitoring) as Error & { code: string; emittable: boolean };
    expect(err).toMatchObject({ code: 'health', emittable: true });
    expect(err.message).toMatch(
      /^Instance became unhealthy: Liveness check unsuccessful: failed to make HTTP request to '\/ping' on port \d+: received status code 502 in \d+ms$/,
    );
    expect(logs.map((m) => `${m.source} ${m.stream}: ${m.line}`)).toEqual([
      'CELL stdout: Starting health monitoring of container',
      'CELL stdout: Container became healthy',
      expect.stringMatching(/^HEALTH stderr: Liveness check unsuccessful: failed to make HTTP request/),
      'CELL stderr: Container became unhealthy',
    ]);
  });

  it('gives up after the start timeout: "Instance never healthy after <d>: <err>"', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await failure(() =>
      startupThenLiveness(
        {
          probes: probesFromChecks([{ tcpCheck: { port } }], local),
          startTimeoutMs: 300,
          startupIntervalMs: 50,
          log,
          healthLog,
        },
        new AbortController().signal,
      ),
    );
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(err).toMatchObject({ code: 'health', emittable: true });
    expect(err.message).toMatch(
      new RegExp(
        `^Instance never healthy after (\\d+ms|[\\d.]+s): Timed out after 300ms \\(\\d+ attempts\\) waiting for startup check to succeed: ` +
          `failed to make TCP connection to 127.0.0.1:${port}: dial tcp 127.0.0.1:${port}: connect: connection refused$`,
      ),
    );
    expect(logs.at(-1)?.line).toMatch(/^Failed after (\d+ms|[\d.]+s): startup health check never passed\.$/);
  });

  it('is cancelled when its signal aborts', async () => {
    const controller = new AbortController();
    const port = await freePort();
    const monitoring = startupThenLiveness(
      { probes: probesFromChecks([{ tcpCheck: { port } }], local), startTimeoutMs: 0, startupIntervalMs: 20 },
      controller.signal,
    );
    setTimeout(() => controller.abort(), 100);
    await expect(monitoring).rejects.toMatchObject({ code: 'cancelled' });
  });
});

describe('checks against a process-backend container', () => {
  let cell: TestCell;
  beforeEach(async () => {
    cell = await testCell();
  });
  afterEach(() => cell.cleanup());

  it('an app listening on $PORT becomes healthy through its port mapping', async () => {
    const mapping = await cell.container.netIn(8080);
    const app = new RunStep({
      container: cell.container,
      action: {
        path: process.execPath,
        args: [
          '-e',
          "require('http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, '127.0.0.1', () => console.log('listening on ' + process.env.PORT))",
        ],
        env: [{ name: 'PORT', value: '8080' }],
        user: 'vcap',
        logSource: 'APP',
      },
      log: cell.log,
      gracefulShutdownMs: 1_000,
    });
    const probes = probesFromChecks([{ httpCheck: { port: 8080 } }], checkTargetFor(await cell.container.info()));
    const check = new HealthCheckStep({ probes, startTimeoutMs: 10_000, startupIntervalMs: 50, log: cell.log });
    const controller = new AbortController();
    let running = false;
    const done = new CodependentStep([app, check], { errorOnExit: false, cancelOthersOnExit: false }).perform(
      controller.signal,
      () => (running = true),
    );
    await eventually(() => running, 5_000);
    expect(cell.lines()).toContain(`listening on ${mapping.hostPort}`);
    expect(cell.lines()).toContain('Container became healthy');
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'aggregate' });
  });
});
