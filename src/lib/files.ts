// Files that are either the old content or the new, never a truncated mix: what a process killed with -9 in the
// middle of a write leaves behind for the next one to read.
import { rename, writeFile } from 'node:fs/promises';

/** Writes `data` to `<file>.tmp`, then renames it over `file` (atomic on one filesystem). */
export async function writeFileAtomic(file: string, data: string, opts: { mode?: number } = {}): Promise<void> {
  await writeFile(`${file}.tmp`, data, opts);
  await rename(`${file}.tmp`, file);
}
