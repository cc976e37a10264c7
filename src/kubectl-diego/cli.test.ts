import { describe, expect, it } from 'vitest';
import { KubeError, RequestTimeoutError } from '../lib/kube.ts';
import { CliError, errorLine, type Io, main } from './cli.ts';

function fakeIo(): Io & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out: (t: string) => void (io.stdout += t),
    err: (t: string) => void (io.stderr += t),
    isTTY: false,
    env: {},
    now: () => 0,
    interrupted: new Promise<void>(() => undefined),
  };
  return io;
}

describe('kubectl diego command line', () => {
  it('prints help on stdout with exit code 0', async () => {
    for (const argv of [[], ['help'], ['--help'], ['logs', '--help']]) {
      const io = fakeIo();
      expect(await main(argv, io)).toBe(0);
      expect(io.stdout).toMatch(/^Usage: kubectl diego/);
    }
  });

  it('refuses an unknown command or a bad flag in one line, exit code 1', async () => {
    for (const argv of [
      ['frobnicate'],
      ['cells', '--bogus'],
      ['-o', 'xml', 'cells'],
      ['logs'],
      ['logs', 'x', '--instance', 'one'],
    ]) {
      const io = fakeIo();
      expect(await main(argv, io)).toBe(1);
      expect(io.stdout).toBe('');
      expect(io.stderr.split('\n').filter(Boolean), argv.join(' ')).toHaveLength(1);
      expect(io.stderr).toMatch(/^error: /);
    }
  });

  it('says why the cluster could not be asked, in one line', () => {
    const server = 'https://10.0.0.1:6443';
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6443'), { code: 'ECONNREFUSED' });
    expect(errorLine(refused, server)).toBe(
      `cannot reach the cluster at ${server}: connect ECONNREFUSED 10.0.0.1:6443`,
    );
    expect(errorLine(new RequestTimeoutError('GET /apis: no answer within 30000 ms'), server)).toBe(
      `cannot reach the cluster at ${server}: GET /apis: no answer within 30000 ms`,
    );
    const noCrd = new KubeError(404, { message: 'the server could not find the requested resource' }, 'GET /apis/x');
    expect(errorLine(noCrd, server)).toBe(`${server} does not serve diego.dev/v1alpha1: are the Diego CRDs installed?`);
    const forbidden = new KubeError(403, { message: 'cells.diego.dev is forbidden:\nUser "x" cannot list' }, 'GET');
    expect(errorLine(forbidden, server)).toBe('cells.diego.dev is forbidden: User "x" cannot list');
    expect(errorLine(new CliError('no ActualLRP named "x"'), server)).toBe('no ActualLRP named "x"');
  });
});
