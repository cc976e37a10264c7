// A cell agent as `diego-operator cell-agent` runs it (process backend, ops server on a free loopback port), for
// the suites that need the whole role: its flags, its signals, its ops server.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inject, onTestFinished } from 'vitest';

export interface AgentProcess {
  child: ChildProcess;
  stateDir: string;
  /** SIGKILL if still running, and remove its state directory (done anyway when the test ends). */
  cleanUp: () => void;
}

/** Starts a cell agent for the current test (call it from a test, not a hook); bound any wait on it (child.ts). */
export function spawnAgent(cellId: string, systemNamespace: string, flags: string[] = []): AgentProcess {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'agent-process-'));
  const child = spawn(
    process.execPath,
    [
      'src/main.ts',
      'cell-agent',
      `--kubeconfig=${inject('kubeconfigPath')}`,
      `--cell-id=${cellId}`,
      '--backend=process',
      `--state-dir=${stateDir}`,
      `--system-namespace=${systemNamespace}`,
      '--ops-address=127.0.0.1:0',
      ...flags,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_NAME: '' } },
  );
  const cleanUp = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  };
  // A test that times out never reaches its finally, and the agent shares this process's stderr: a stray one would
  // keep the test run from ending.
  onTestFinished(cleanUp);
  return { child, stateDir, cleanUp };
}
