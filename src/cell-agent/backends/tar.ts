// Extracting and creating tar streams with the system tar, shared by the backends.
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { collect, exitCode } from './process.ts';

/**
 * Pipes `tar` (a stream or a buffer) into `command args` (a tar extraction) and fails with tar's own message.
 * An error of the input stream wins over tar's exit status, which would only say the archive ended early.
 */
export async function extractTar(
  command: string,
  args: string[],
  cwd: string | undefined,
  tar: Readable | Buffer,
  dst: string,
): Promise<void> {
  const child = spawn(command, args, { cwd, stdio: ['pipe', 'ignore', 'pipe'] });
  const stderr = collect(child.stderr);
  const input = Buffer.isBuffer(tar) ? Readable.from([tar]) : tar;
  let inputError: Error | undefined;
  input.once('error', (err) => {
    inputError = err;
    child.stdin.destroy();
  });
  // EPIPE when tar stops reading early (a bad archive): its exit status says what went wrong.
  child.stdin.on('error', () => {});
  input.pipe(child.stdin);
  const code = await exitCode(child);
  if (!input.readableEnded) input.destroy();
  if (inputError) throw inputError;
  if (code !== 0) throw new Error(`tar extraction into ${dst} failed (exit ${code}): ${(await stderr).trim()}`);
}

/**
 * The output of `command args` (a tar creation of `src`) as a stream that ends when tar succeeds and fails with
 * `message(stderr)` when it does not. A reader that stops early (the upload step reads one entry) kills tar, so
 * that it is not left blocked on a full pipe.
 */
export function createTar(
  command: string,
  args: string[],
  src: string,
  message: (stderr: string) => string = (text) => text.trim(),
): Readable {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = collect(child.stderr);
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  out.once('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  void Promise.all([exitCode(child), stderr]).then(([code, text]) => {
    if (code === 0) out.end();
    else out.destroy(new Error(`tar of ${src} failed (exit ${code}): ${message(text)}`));
  });
  return out;
}
