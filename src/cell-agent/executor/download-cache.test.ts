import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failure, loopback, type Loopback } from '../testing.ts';
import { DownloadCache } from './download-cache.ts';
import { Downloader } from './downloader.ts';

let dir: string;
let server: Loopback;
/** path → [body, etag]; an empty etag sends no caching headers. */
let files: Map<string, { body: Buffer; etag: string; lastModified?: string }>;
let log: string[];

const signal = () => new AbortController().signal;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function tgzOf(content: Record<string, string>): Promise<Buffer> {
  const src = await mkdtemp(path.join(dir, 'src-'));
  for (const [name, text] of Object.entries(content)) {
    await mkdir(path.dirname(path.join(src, name)), { recursive: true });
    await writeFile(path.join(src, name), text, { mode: 0o755 });
  }
  return execFileSync('tar', ['-c', '-z', '-f', '-', '-C', src, '.']);
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'download-cache-'));
  files = new Map();
  log = [];
  server = await loopback((req, res) => {
    const f = files.get(req.url ?? '');
    if (!f) return void res.writeHead(404).end();
    const conditional = req.headers['if-none-match'];
    if (f.etag && conditional === f.etag) {
      log.push(`304 ${req.url}`);
      return void res.writeHead(304).end();
    }
    log.push(`200 ${req.url}`);
    res.writeHead(200, {
      ...(f.etag ? { ETag: f.etag } : {}),
      ...(f.lastModified ? { 'Last-Modified': f.lastModified } : {}),
    });
    res.end(f.body);
  });
});

afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function newCache(maxBytes?: number): DownloadCache {
  return new DownloadCache({
    dir: path.join(dir, 'cache'),
    maxBytes,
    downloader: new Downloader({ retryWaitMs: 10 }),
  });
}

describe('download cache', () => {
  it('downloads once, then revalidates with If-None-Match and serves the cached copy on 304', async () => {
    files.set('/app.tgz', { body: await tgzOf({ 'app/run': '#!/bin/sh\necho hi\n' }), etag: '"v1"' });
    const cache = newCache();
    await cache.open();
    const first = await cache.fetchDirectory(server.url('/app.tgz'), 'app-v1', {}, signal());
    expect(first.downloaded).toBeGreaterThan(0);
    expect(await readFile(path.join(first.path, 'app/run'), 'utf8')).toContain('echo hi');
    const second = await cache.fetchDirectory(server.url('/app.tgz'), 'app-v1', {}, signal());
    expect(second).toMatchObject({ path: first.path, downloaded: 0 });
    expect(log).toEqual(['200 /app.tgz', '304 /app.tgz']);
    await first.release();
    await second.release();
    expect(existsSync(first.path)).toBe(true); // cached, not in use
  });

  it('downloads a key once for concurrent callers (one transfer, the others revalidate)', async () => {
    files.set('/big.tgz', { body: await tgzOf({ f: 'x'.repeat(100_000) }), etag: '"b"' });
    const cache = newCache();
    await cache.open();
    const leases = await Promise.all(
      Array.from({ length: 5 }, () => cache.fetchDirectory(server.url('/big.tgz'), 'big', {}, signal())),
    );
    expect(new Set(leases.map((l) => l.path)).size).toBe(1);
    expect(log.filter((l) => l.startsWith('200'))).toHaveLength(1);
    await Promise.all(leases.map((l) => l.release()));
  });

  it('replaces a changed download; the old version stays while it is held and goes with its last lease', async () => {
    files.set('/a.tgz', { body: await tgzOf({ v: '1' }), etag: '"1"' });
    const cache = newCache();
    await cache.open();
    const old = await cache.fetchDirectory(server.url('/a.tgz'), 'a', {}, signal());
    files.set('/a.tgz', { body: await tgzOf({ v: '2' }), etag: '"2"' });
    const fresh = await cache.fetchDirectory(server.url('/a.tgz'), 'a', {}, signal());
    expect(fresh.path).not.toBe(old.path);
    expect(await readFile(path.join(fresh.path, 'v'), 'utf8')).toBe('2');
    expect(await readFile(path.join(old.path, 'v'), 'utf8')).toBe('1');
    await old.release();
    expect(existsSync(old.path)).toBe(false);
    await fresh.release();
  });

  it('uses a response without ETag or Last-Modified once and keeps nothing', async () => {
    files.set('/plain.tgz', { body: await tgzOf({ p: 'p' }), etag: '' });
    const cache = newCache();
    await cache.open();
    const lease = await cache.fetchDirectory(server.url('/plain.tgz'), 'plain', {}, signal());
    expect(await readFile(path.join(lease.path, 'p'), 'utf8')).toBe('p');
    await lease.release();
    expect(existsSync(lease.path)).toBe(false);
    expect(cache.usedBytes()).toBe(0);
  });

  it('caches on Last-Modified alone', async () => {
    files.set('/lm.tgz', { body: await tgzOf({ l: 'l' }), etag: '', lastModified: 'Tue, 01 Dec 2026 10:00:00 GMT' });
    const cache = newCache();
    await cache.open();
    const lease = await cache.fetchFile(server.url('/lm.tgz'), 'lm', {}, signal());
    await lease.release();
    expect(existsSync(lease.path)).toBe(true);
  });

  it('evicts the least recently used entries nobody holds to stay under its size', async () => {
    const body = (c: string) => tgzOf({ data: c.repeat(20_000) });
    for (const n of ['a', 'b', 'c']) files.set(`/${n}.tgz`, { body: await body(n), etag: `"${n}"` });
    const cache = newCache(40_000 * 2); // room for about two tar files of ~30 KB
    await cache.open();
    const a = await cache.fetchFile(server.url('/a.tgz'), 'a', {}, signal());
    const b = await cache.fetchFile(server.url('/b.tgz'), 'b', {}, signal());
    await b.release(); // a is still held: b is the one that can go
    const c = await cache.fetchFile(server.url('/c.tgz'), 'c', {}, signal());
    expect(existsSync(a.path)).toBe(true);
    expect(existsSync(b.path)).toBe(false);
    expect(existsSync(c.path)).toBe(true);
    await a.release();
    await c.release();
  });

  it('refuses a download whose checksum does not match, without retrying and without caching it', async () => {
    const body = await tgzOf({ x: 'x' });
    files.set('/x.tgz', { body, etag: '"x"' });
    const cache = newCache();
    await cache.open();
    const err = await failure(() =>
      cache.fetchFile(
        server.url('/x.tgz'),
        'x',
        { algorithm: 'sha256', value: sha256(Buffer.from('other')) },
        signal(),
      ),
    );
    expect(err.message).toContain('Checksum failed');
    expect(log).toEqual(['200 /x.tgz']);
    const ok = await cache.fetchFile(server.url('/x.tgz'), 'x', { algorithm: 'sha256', value: sha256(body) }, signal());
    expect(ok.downloaded).toBe(body.length);
    await ok.release();
  });

  it('keeps its index across a restart: a restarted agent re-takes mounted directories, then prunes the rest', async () => {
    files.set('/r.tgz', { body: await tgzOf({ r: '1' }), etag: '"1"' });
    const before = newCache();
    await before.open();
    const mounted = await before.fetchDirectory(server.url('/r.tgz'), 'r', {}, signal());
    files.set('/r.tgz', { body: await tgzOf({ r: '2' }), etag: '"2"' });
    const current = await before.fetchDirectory(server.url('/r.tgz'), 'r', {}, signal());
    await current.release();
    // The agent dies holding `mounted` (a container still has it bind-mounted); a new one starts.
    const after = newCache();
    await after.open();
    const retained = after.retainDirectory(mounted.path);
    expect(retained?.path).toBe(mounted.path);
    await after.pruneUnused();
    expect(existsSync(mounted.path)).toBe(true);
    const again = await after.fetchDirectory(server.url('/r.tgz'), 'r', {}, signal());
    expect(again).toMatchObject({ path: current.path, downloaded: 0 }); // still warm after the restart
    await retained?.release();
    expect(existsSync(mounted.path)).toBe(false);
    await again.release();
    expect((await readdir(path.join(dir, 'cache', 'temp'))).length).toBe(0);
  });

  it('forgets files left by a crash mid-download', async () => {
    const cacheDir = path.join(dir, 'cache');
    await mkdir(path.join(cacheDir, 'entries'), { recursive: true });
    await writeFile(path.join(cacheDir, 'entries', 'stray.tar'), 'partial');
    const cache = newCache();
    await cache.open();
    expect(await readdir(path.join(cacheDir, 'entries'))).toEqual([]);
  });
});
