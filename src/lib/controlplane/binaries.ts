// Locating (and, the first time, building) etcd, kube-apiserver and kube-controller-manager.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;

let pending: Promise<string> | undefined;

/**
 * Returns the directory holding the control-plane binaries. Uses $DIEGO_CONTROL_PLANE_BIN if
 * set; otherwise runs hack/build-control-plane.sh, which builds into a cache on first use
 * (tens of minutes; progress on stderr) and returns instantly afterwards. Memoized per
 * process; the script itself serializes concurrent builds with a lock file. `signal` (for the call that starts the
 * build) stops the build: the script gets SIGTERM and stops its Go build.
 */
export function ensureBinaries(opts: { signal?: AbortSignal } = {}): Promise<string> {
  const fromEnv = process.env.DIEGO_CONTROL_PLANE_BIN;
  if (fromEnv) return Promise.resolve(checkBinDir(resolve(fromEnv), 'DIEGO_CONTROL_PLANE_BIN'));
  pending ??= build(opts.signal).catch((err: unknown) => {
    pending = undefined; // let a later call retry
    throw err;
  });
  return pending;
}

/** Throws unless `dir` holds etcd and kube-apiserver (and kube-controller-manager if asked). */
export function checkBinDir(dir: string, source: string, needControllerManager = false): string {
  const needed = needControllerManager ? BINARIES : BINARIES.filter((b) => b !== 'kube-controller-manager');
  const missing = needed.filter((b) => !existsSync(join(dir, b)));
  if (missing.length > 0) {
    throw new Error(
      `control-plane binaries missing in ${dir} (from ${source}): ${missing.join(', ')}. ` +
        `Build them with hack/build-control-plane.sh (it prints the directory to use) or unset DIEGO_CONTROL_PLANE_BIN.`,
    );
  }
  return dir;
}

async function build(signal: AbortSignal | undefined): Promise<string> {
  const script = join(repoRoot(), 'hack', 'build-control-plane.sh');
  const out = await new Promise<string>((resolveOut, reject) => {
    // stderr is inherited so the (long) first build shows its progress.
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'], signal });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolveOut(stdout);
      else
        reject(
          new Error(
            `${script} failed (${signal ?? `exit code ${code}`}); see its output above. ` +
              `It needs Go >= 1.26 and the Go module proxy. Or point DIEGO_CONTROL_PLANE_BIN at prebuilt binaries.`,
          ),
        );
    });
  });
  const dir = out.trim().split('\n').at(-1)?.trim() ?? '';
  if (!dir) throw new Error(`${script} printed no directory on its last line`);
  return checkBinDir(dir, script, true);
}

// Walk up from this module (src/… or dist/…) to the checkout that has the build script.
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'hack', 'build-control-plane.sh'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `hack/build-control-plane.sh not found above ${fileURLToPath(import.meta.url)}; ` +
          `set DIEGO_CONTROL_PLANE_BIN to a directory with etcd, kube-apiserver and kube-controller-manager.`,
      );
    }
    dir = parent;
  }
}
