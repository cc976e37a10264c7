// Extracting a tar stream with the system tar, shared by the backends.
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
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
