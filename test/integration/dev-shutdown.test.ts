// `make run` (diego-operator dev) stops everything it started — etcd, kube-apiserver, kube-controller-manager and
// whatever else runs under it — when told to: SIGTERM (what make passes on, and what `kill` sends), or its parent
// going away (make killed; Node has no PDEATHSIG, so dev mode watches its parent).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

/** A process as /proc shows it; `start` (clock ticks since boot) tells a reused pid from the original. */
interface Proc {
  pid: number;
  comm: string;
  start: string;
}

function stat(pid: number): { comm: string; state: string; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const fields = text.slice(close + 2).split(' '); // from field 3 (state) on
    return { comm: text.slice(text.indexOf('(') + 1, close), state: fields[0]!, start: fields[19]! };
  } catch {
    return undefined;
  }
}

function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** Every process below `pid`. */
function descendants(pid: number): Proc[] {
  const found: Proc[] = [];
  const queue = children(pid);
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    const s = stat(p);
    if (s) found.push({ pid: p, comm: s.comm, start: s.start });
    queue.push(...children(p));
  }
  return found;
}

/** Still running: present, the same process (not a reused pid), and not a zombie waiting to be reaped. */
function alive(p: Proc): boolean {
  const s = stat(p.pid);
  return s !== undefined && s.start === p.start && s.state !== 'Z';
}

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, LOG_FORMAT: 'json' };
  delete e.DIEGO_TEST_KUBECONFIG; // its own control plane, as on a fresh machine
  return e;
}

/** Collects a child's stdout; resolves once dev mode printed its banner. */
async function ready(child: ChildProcess): Promise<string> {
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', () => undefined);
  await eventually(() => expect(out).toContain('Press Ctrl-C to stop'), 240_000);
  return out;
}

function expectControlPlane(procs: Proc[]): void {
  const names = procs.map((p) => p.comm);
  expect(names).toEqual(expect.arrayContaining(['etcd', 'kube-apiserver', 'kube-controller'])); // comm: 15 chars
}

describe('make run stops everything', () => {
  it('on SIGTERM: exits 0 and leaves no process it started, nor the control plane directory', async () => {
    const dev = spawn(process.execPath, ['src/main.ts', 'dev', '--no-sample'], {
      cwd: repo,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => dev.once('exit', (code) => resolve(code)));
    try {
      const out = await ready(dev);
      const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1];
      expect(kubeconfig && existsSync(kubeconfig)).toBe(true);
      expect(out).toMatch(/ PATH=\S+:\$PATH/); // where kubectl is
      const procs = descendants(dev.pid!);
      expectControlPlane(procs);

      dev.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(procs.filter(alive)).toEqual([]);
      expect(existsSync(kubeconfig!)).toBe(false);
    } finally {
      if (dev.exitCode === null) dev.kill('SIGKILL');
    }
  }, 400_000);

  it('when its parent goes away (make killed): stops and leaves no process it started', async () => {
    // bash stands in for make: dev mode is its child, and bash is killed outright.
    const parent = spawn('bash', ['-c', `${JSON.stringify(process.execPath)} src/main.ts dev --no-sample & wait`], {
      cwd: repo,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let procs: Proc[] = [];
    try {
      await ready(parent);
      const [devPid] = children(parent.pid!);
      expect(devPid).toBeDefined();
      const dev = { pid: devPid!, comm: 'node', start: stat(devPid!)!.start };
      procs = [dev, ...descendants(devPid!)];
      expectControlPlane(procs);

      parent.kill('SIGKILL');
      await eventually(() => expect(procs.filter(alive)).toEqual([]), 120_000);
    } finally {
      for (const p of procs.filter(alive)) process.kill(p.pid, 'SIGKILL');
      if (parent.exitCode === null) parent.kill('SIGKILL');
    }
  }, 400_000);
});
