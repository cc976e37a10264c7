// Runs Diego's own Go BBS client (test/bbs-conformance, code.cloudfoundry.org/bbs unmodified) with `go run`, and
// reads the steps it reports ("ok <step>" per line on stdout; the failure on stderr).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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

export function runBbsClient(args: string[], timeoutMs: number): Promise<GoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['run', '.', ...args], {
      cwd: goDir,
      env: { ...process.env, GOWORK: 'off', GOFLAGS: '-mod=readonly' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ok = stdout
        .split('\n')
        .filter((l) => l.startsWith('ok '))
        .map((l) => l.slice(3));
      resolve({ code, stdout, stderr, ok });
    });
  });
}
