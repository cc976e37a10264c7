import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, eventually, failure, sh, testCell, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';
import { StepError } from '../errors.ts';
import { LogStreamer } from '../log.ts';
import { networkingEnv, RunStep } from './run.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell({ env: [{ name: 'FROM_CONTAINER', value: 'yes' }] });
});
afterEach(() => cell.cleanup());

const run = (action: ReturnType<typeof sh>, signal = new AbortController().signal) =>
  buildStep(action, cell.ctx()).perform(signal);

describe('run step', () => {
  it('succeeds on exit 0 and streams stdout/stderr under the container source', async () => {
    await run(sh('echo out; echo err >&2'));
    expect(cell.logs).toEqual([
      { source: 'LOG', stream: 'stdout', line: 'out' },
      { source: 'LOG', stream: 'stderr', line: 'err' },
      { source: 'LOG', stream: 'stdout', line: 'Exit status 0' },
    ]);
  });

  it('fails a non-zero exit with "<SOURCE>: Exited with status N" and logs "Exit status N"', async () => {
    const err = await failure(() => run(sh('exit 3', { logSource: 'APP' })));
    expect(err).toBeInstanceOf(StepError);
    expect(err).toMatchObject({ code: 'exit', exitStatus: 3, emittable: true, message: 'APP: Exited with status 3' });
    expect(cell.logs.at(-1)).toEqual({ source: 'APP', stream: 'stdout', line: 'Exit status 3' });
  });

  it('passes args, and env = container env + action env + CF_INSTANCE_*', async () => {
    const step = buildStep(
      {
        run: {
          path: '/bin/sh',
          args: ['-c', 'echo "$1|$FROM_CONTAINER|$GREETING|$CF_INSTANCE_ADDR|$CF_INSTANCE_PORTS"', 'sh', 'first arg'],
          env: [{ name: 'GREETING', value: 'hello world' }],
          user: 'vcap',
        },
      },
      cell.ctx({
        network: {
          externalIp: '10.0.0.5',
          internalIp: '10.255.0.2',
          ports: [{ containerPort: 8080, hostPort: 61001 }],
        },
      }),
    );
    await step.perform(new AbortController().signal);
    expect(cell.lines('stdout')[0]).toBe(
      'first arg|yes|hello world|10.0.0.5:61001|[{"external":61001,"internal":8080}]',
    );
  });

  it('builds CF_INSTANCE_* like Diego, with and without ports', () => {
    expect(networkingEnv({ externalIp: '1.2.3.4', internalIp: '10.0.0.1', ports: [] })).toEqual([
      { name: 'CF_INSTANCE_IP', value: '1.2.3.4' },
      { name: 'CF_INSTANCE_INTERNAL_IP', value: '10.0.0.1' },
      { name: 'CF_INSTANCE_PORT', value: '' },
      { name: 'CF_INSTANCE_ADDR', value: '' },
      { name: 'CF_INSTANCE_PORTS', value: '[]' },
    ]);
    const env = networkingEnv({
      externalIp: '1.2.3.4',
      internalIp: '10.0.0.1',
      internalIpv6: 'fd00::1',
      ports: [
        { containerPort: 8080, hostPort: 6000, containerTlsProxyPort: 61001, hostTlsProxyPort: 6001 },
        { containerPort: 2222, hostPort: 0 },
      ],
    });
    expect(env.map((e) => `${e.name}=${e.value}`)).toEqual([
      'CF_INSTANCE_IP=1.2.3.4',
      'CF_INSTANCE_INTERNAL_IP=10.0.0.1',
      'CF_INSTANCE_INTERNAL_IPV6=fd00::1',
      'CF_INSTANCE_PORT=6000',
      'CF_INSTANCE_ADDR=1.2.3.4:6000',
      'CF_INSTANCE_PORTS=[{"external":6000,"internal":8080,"external_tls_proxy":6001,"internal_tls_proxy":61001},{"internal":2222}]',
    ]);
  });

  it('suppresses output when asked', async () => {
    await run(sh('echo secret', { suppressLogOutput: true }));
    expect(cell.logs).toEqual([]);
  });

  it('fails when the process cannot be created, logging failed-creating-process', async () => {
    const err = await failure(() => run({ run: { path: '/no/such/binary', user: 'vcap' } } as never));
    expect(err).toMatchObject({ code: 'internal', emittable: false });
    expect(cell.lines('stdout')[0]).toMatch(/^failed-creating-process: .*ENOENT/);
  });

  it('is ready once the process has started', async () => {
    const controller = new AbortController();
    let ready = false;
    const done = buildStep(sh('exec sleep 30'), cell.ctx()).perform(controller.signal, () => (ready = true));
    await eventually(() => ready);
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'cancelled' });
  });

  it('does not start when already cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(run(sh('echo never'), controller.signal)).rejects.toMatchObject({ code: 'cancelled' });
    expect(cell.logs).toEqual([]);
  });

  it('cancellation sends SIGTERM: a process that exits on it ends the step as cancelled', async () => {
    const controller = new AbortController();
    const done = buildStep(
      sh('trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 0.05; done'),
      cell.ctx(),
    ).perform(controller.signal);
    await eventually(() => cell.lines().includes('started'));
    controller.abort();
    const err = await failure(() => done);
    expect(err).toMatchObject({ code: 'cancelled', message: 'cancelled', displayable: false });
    expect(cell.lines()).toContain('got TERM');
    expect(cell.lines().at(-1)).toBe('Exit status 0');
  });

  it('cancellation sends SIGKILL after the grace period to a process that ignores SIGTERM', async () => {
    const controller = new AbortController();
    const step = new RunStep({
      container: cell.container,
      action: { path: '/bin/sh', args: ['-c', 'trap "" TERM; echo $$; exec sleep 30'], user: 'vcap' },
      log: new LogStreamer((m) => cell.logs.push(m), 'APP'),
      gracefulShutdownMs: 300,
    });
    const done = step.perform(controller.signal);
    await eventually(() => cell.logs.length > 0);
    const pid = Number(cell.lines()[0]);
    expect(alive(pid)).toBe(true);
    const started = Date.now();
    controller.abort();
    const err = await failure(() => done);
    const took = Date.now() - started;
    expect(err).toMatchObject({ code: 'exceeded-graceful-shutdown', message: 'exceeded graceful shutdown interval' });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2_000);
    expect(cell.logs.at(-1)).toEqual({
      source: 'APP',
      stream: 'stdout',
      line: 'Exit status 137 (exceeded 300ms graceful shutdown interval)',
    });
    expect(alive(pid)).toBe(false);
  });
});
