// Archives for the download and upload steps. Diego's cacheddownloader turns every download into a tar
// (TarTransform: tgz is gunzipped, zip is repacked) because Garden's StreamIn takes tar; the upload step
// reads the first entry of the tar that StreamOut returns. zip goes through the system `unzip` and `tar`.
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';

const execFileAsync = promisify(execFile);

/** cacheddownloader.ErrUnknownArchiveFormat */
export const UNKNOWN_ARCHIVE_FORMAT = 'unknown archive format';

export type ArchiveFormat = 'tar' | 'gzip' | 'zip';

/** Sniffs the first 512 bytes the way cacheddownloader's mimeType does (tar magic, then gzip/zip signatures). */
export async function detectArchiveFormat(file: string): Promise<ArchiveFormat | undefined> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await handle.read(buf, 0, 512, 0);
    const head = buf.subarray(0, bytesRead);
    // POSIX ustar is "ustar\0"; GNU tar (the default format of GNU tar) writes "ustar  \0". Diego only knows
    // the first, so it rejects GNU-format tarballs; we accept both.
    const magic = head.subarray(257, 263).toString('latin1');
    if (magic === 'ustar\0' || magic === 'ustar ') return 'tar';
    if (head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
    if (head.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) return 'zip';
    return undefined;
  } finally {
    await handle.close();
  }
}

/** A tar file with the contents of the archive `file` (the file itself when it is a tar); scratch goes in workDir. */
export async function tarTransform(file: string, workDir: string): Promise<string> {
  const format = await detectArchiveFormat(file);
  switch (format) {
    case 'tar':
      return file;
    case 'gzip': {
      const out = path.join(workDir, 'transformed.tar');
      await pipeline(createReadStream(file), createGunzip(), createWriteStream(out));
      return out;
    }
    case 'zip': {
      const dir = path.join(workDir, 'unzipped');
      const out = path.join(workDir, 'transformed.tar');
      await mkdir(dir);
      try {
        await execFileAsync('unzip', ['-q', '-o', file, '-d', dir]);
      } catch (err) {
        // unzip exits 1 for warnings after extracting everything.
        if ((err as { code?: unknown }).code !== 1) throw err;
      }
      await execFileAsync('tar', ['-c', '-f', out, '-C', dir, '.']);
      return out;
    }
    default:
      throw new Error(UNKNOWN_ARCHIVE_FORMAT);
  }
}

/**
 * Writes the content of the first entry of a tar stream to `dest` (Go: tar.NewReader(...).Next() and copy).
 * Throws 'EOF' for an empty archive. The rest of the stream is discarded.
 */
export async function extractFirstTarEntry(tar: Readable, dest: string): Promise<{ name: string; size: number }> {
  const chunks = tar[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buf: Buffer = Buffer.alloc(0);
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n) {
      const next = await chunks.next();
      if (next.done) return false;
      buf = buf.length === 0 ? next.value : Buffer.concat([buf, next.value]);
    }
    return true;
  };
  try {
    let longName: string | undefined;
    for (;;) {
      if (!(await fill(512))) throw new Error(buf.length === 0 ? 'EOF' : 'unexpected EOF');
      const header = buf.subarray(0, 512);
      buf = buf.subarray(512);
      if (header.every((b) => b === 0)) throw new Error('EOF');
      if (!validChecksum(header)) throw new Error('archive/tar: invalid tar header');
      const type = String.fromCharCode(header[156] ?? 0);
      const size = parseNumeric(header.subarray(124, 136));
      const padded = Math.ceil(size / 512) * 512;
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        // Extended headers: the next header is the entry. Keep a GNU long name; pax paths are rare enough here.
        if (!(await fill(padded))) throw new Error('unexpected EOF');
        if (type === 'L') longName = cString(buf.subarray(0, size));
        buf = buf.subarray(padded);
        continue;
      }
      const name = longName ?? tarName(header);
      let remaining = type === '0' || type === '\0' || type === '7' ? size : 0;
      const body = async function* (): AsyncGenerator<Buffer> {
        while (remaining > 0) {
          if (buf.length === 0) {
            const next = await chunks.next();
            if (next.done) throw new Error('unexpected EOF');
            buf = next.value;
          }
          const take = Math.min(remaining, buf.length);
          yield buf.subarray(0, take);
          buf = buf.subarray(take);
          remaining -= take;
        }
      };
      await pipeline(Readable.from(body()), createWriteStream(dest));
      return { name, size: type === '0' || type === '\0' || type === '7' ? size : 0 };
    }
  } finally {
    await chunks.return?.();
  }
}

function tarName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const prefix = header.subarray(257, 263).toString('latin1') === 'ustar\0' ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end === -1 ? b.length : end).toString('utf8');
}

/** Octal ASCII, or GNU base-256 when the high bit of the first byte is set. */
function parseNumeric(field: Buffer): number {
  if ((field[0] ?? 0) & 0x80) {
    let value = (field[0] ?? 0) & 0x7f;
    for (const b of field.subarray(1)) value = value * 256 + b;
    return value;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function validChecksum(header: Buffer): boolean {
  const expected = parseNumeric(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  return sum === expected;
}
