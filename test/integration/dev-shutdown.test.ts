// `make run` (diego-operator dev) stops everything it started — etcd, kube-apiserver, kube-controller-manager and
// whatever else runs under it — when told to: SIGTERM (what make passes on, and what `kill` sends), or its parent
// going away (make killed; Node has no PDEATHSIG, so dev mode watches its parent).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { exitOf, running } from '../support/child.ts';
import { eventually } from '../support/eventually.ts';
import { alive, children, descendants, killAlive, type Proc, stat } from '../support/proc-tree.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

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
    let procs: Proc[] = [];
    // SIGKILLed, it cannot stop what it started: those go first.
    const killAll = () => {
      killAlive([...procs, ...(running(dev) ? descendants(dev.pid!) : [])]);
      dev.kill('SIGKILL');
    };
    onTestFinished(killAll); // a test that times out never reaches its finally
    try {
      const out = await ready(dev);
      const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1];
      expect(kubeconfig && existsSync(kubeconfig)).toBe(true);
      expect(out).toMatch(/ PATH=\S+:\$PATH/); // where kubectl is
      procs = descendants(dev.pid!);
      expectControlPlane(procs);

      dev.kill('SIGTERM');
      expect(await exitOf(dev, 120_000, 'make run (after SIGTERM)')).toEqual([0, null]);
      expect(procs.filter(alive)).toEqual([]);
      expect(existsSync(kubeconfig!)).toBe(false);
    } finally {
      killAll();
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
    const killAll = () => {
      killAlive([...procs, ...(running(parent) ? descendants(parent.pid!) : [])]);
      parent.kill('SIGKILL');
    };
    onTestFinished(killAll); // a test that times out never reaches its finally
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
      killAll();
    }
  }, 400_000);
});
