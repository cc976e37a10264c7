// Runs Diego's own Go BBS client (test/bbs-conformance, code.cloudfoundry.org/bbs unmodified) with `go run`, and
// reads the steps it reports ("ok <step>" per line on stdout; the failure on stderr).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

const goDir = fileURLToPath(new URL('../bbs-conformance/', import.meta.url));

/** The steps of the api scenario (main.go), in the order it reports them. */
export const API_SCENARIO_STEPS = [
  'subscribe-instance-events',
  'subscribe-task-events',
  'ping',
  'domains',
  'desire-lrp',
  'desire-lrp-unclaimed',
  'desired-lrps',
  'desired-lrp-by-process-guid',
  'desired-lrp-scheduling-infos',
  'desired-lrp-routing-infos',
  'actual-lrps-by-process-guid',
  'actual-lrps-by-cell-id',
  'update-desired-lrp',
  'remove-desired-lrp',
  'lrp-instance-events',
  'desire-task',
  'task-by-guid',
  'tasks',
  'cancel-task',
  'resolving-task',
  'delete-task',
  'task-not-found',
  'task-events',
];

export interface GoRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The steps reported ok, in order. */
  ok: string[];
}

/** Runs the client; once `timeoutMs` have passed, kills it (code null, and stderr says so). */
export function runBbsClient(args: string[], timeoutMs: number): Promise<GoRun> {
  return new Promise((resolve, reject) => {
    // Its own process group, killed as a whole: killed alone, `go run` leaves the program it built running, holding
    // the pipes ('close' would never come).
    const child = spawn('go', ['run', '.', ...args], {
      cwd: goDir,
      env: { ...process.env, GOWORK: 'off', GOFLAGS: '-mod=readonly' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let closed = false;
    const kill = () => {
      if (closed || child.pid === undefined) return; // (its group may be gone, its id another's)
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      stderr += `\n(killed: still running ${timeoutMs} ms later)\n`;
      kill();
    }, timeoutMs);
    // A test that times out (or fails) before then: the run ends with it.
    onTestFinished(kill);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      closed = true;
      clearTimeout(timer);
      const ok = stdout
        .split('\n')
        .filter((l) => l.startsWith('ok '))
        .map((l) => l.slice(3));
      resolve({ code, stdout, stderr, ok });
    });
  });
}
