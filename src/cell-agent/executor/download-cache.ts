// The cell's download cache (Diego's cacheddownloader: cached_downloader.go + file_cache.go), shared by the
// download actions that carry a cache_key and by cached dependencies (which Diego bind-mounts read-only).
//
// * Entries are keyed by the cache key (hashed for the file name). Every fetch revalidates the entry with the
//   server (If-None-Match / If-Modified-Since): 304 is a hit and costs no transfer; 200 replaces the entry. A
//   response without ETag or Last-Modified is not cacheable: it is used once and removed when released.
// * An entry holds the download as a tar (zip and tgz are repacked, as Diego's TarTransform does) and, once a
//   container needed it as a directory, the extracted tree beside it. Callers get a lease: the files stay
//   while it is held; a replaced version lives on until its last lease goes.
// * Size-bounded (Diego's max_cache_size_in_bytes, 10 GB): before adding, the least recently used entries that
//   nobody holds are evicted. What is held is never evicted, so the cache may exceed its bound while in use.
// * One fetch per key at a time; a second caller waits and then revalidates (so ten containers starting with
//   the same buildpack download it once). Transfers are bounded by the cell-wide limiter of the Downloader.
// * The index survives an agent restart (state.json, written on every change): a restarted agent re-takes the
//   directories its adopted containers still have mounted (retainDirectory) and only then prunes the rest.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { writeFileAtomic } from '../../lib/files.ts';
import path from 'node:path';
import { tarTransform } from './archive.ts';
import { type CachingInfo, type Checksum, Downloader, isCacheable } from './downloader.ts';
import { noopLogger, type ExecutorLogger } from './log.ts';

/** Diego's max_cache_size_in_bytes default. */
export const DEFAULT_MAX_CACHE_BYTES = 10_000_000_000;

export interface CacheMetrics {
  hit(): void;
  miss(): void;
  evicted(): void;
  /** Bytes the cache holds now. */
  size(bytes: number): void;
}

export interface DownloadCacheOptions {
  /** The cache's own directory (created; its temp/ is emptied on open). */
  dir: string;
  maxBytes?: number;
  downloader?: Downloader;
  metrics?: CacheMetrics;
  logger?: ExecutorLogger;
  now?: () => number;
}

/** A cached file or directory, kept on disk until released. `downloaded` is 0 when the cache was warm. */
export interface Lease {
  path: string;
  downloaded: number;
  release(): Promise<void>;
}

interface Version {
  id: string;
  tar: string;
  dir?: string;
  bytes: number;
  fileUses: number;
  dirUses: number;
}

interface Entry {
  key: string;
  caching: CachingInfo;
  access: number;
  current: Version;
}

interface SavedState {
  seq: number;
  entries: { key: string; caching: CachingInfo; access: number; id: string; bytes: number; dir: boolean }[];
  retired: { id: string; bytes: number; dir: boolean }[];
}

export class DownloadCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly downloader: Downloader;
  readonly #entries = new Map<string, Entry>();
  /** Replaced versions that leases still hold. */
  readonly #retired = new Set<Version>();
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #logger: ExecutorLogger;
  readonly #now: () => number;
  #seq = 0;
  #saving: Promise<void> = Promise.resolve();

  readonly o: DownloadCacheOptions;

  constructor(o: DownloadCacheOptions) {
    this.o = o;
    this.dir = path.resolve(o.dir);
    this.maxBytes = o.maxBytes ?? DEFAULT_MAX_CACHE_BYTES;
    this.downloader = o.downloader ?? new Downloader({ logger: o.logger });
    this.#logger = o.logger ?? noopLogger;
    this.#now = o.now ?? Date.now;
  }

  get #entriesDir(): string {
    return path.join(this.dir, 'entries');
  }

  get #tempDir(): string {
    return path.join(this.dir, 'temp');
  }

  /** Creates the directories and loads the index a previous agent saved (nothing is evicted here). */
  async open(): Promise<void> {
    await rm(this.#tempDir, { recursive: true, force: true });
    await mkdir(this.#tempDir, { recursive: true });
    await mkdir(this.#entriesDir, { recursive: true });
    let saved: SavedState | undefined;
    try {
      saved = JSON.parse(await readFile(path.join(this.dir, 'state.json'), 'utf8')) as SavedState;
    } catch {
      saved = undefined; // first start, or a torn file: the entries directory is swept below
    }
    this.#seq = saved?.seq ?? 0;
    for (const e of saved?.entries ?? []) {
      const v = this.#version(e.id, e.bytes, e.dir);
      if (await exists(v.tar))
        this.#entries.set(hashKey(e.key), { key: e.key, caching: e.caching, access: e.access, current: v });
    }
    for (const r of saved?.retired ?? []) this.#retired.add(this.#version(r.id, r.bytes, r.dir));
    // Files no entry knows (a crash mid-download) go now; retired versions wait for pruneUnused().
    const known = new Set(
      [...this.#versions()].flatMap((v) => [path.basename(v.tar), ...(v.dir ? [path.basename(v.dir)] : [])]),
    );
    for (const name of await readdir(this.#entriesDir)) {
      if (!known.has(name)) await rm(path.join(this.#entriesDir, name), { recursive: true, force: true });
    }
    this.#report();
  }

  /** Bytes held now. */
  usedBytes(): number {
    let sum = 0;
    for (const v of this.#versions()) sum += v.bytes;
    return sum;
  }

  /** The download (as a tar file) for a download action with a cache key. */
  fetchFile(url: string, cacheKey: string, checksum: Checksum, signal: AbortSignal): Promise<Lease> {
    return this.#withKey(cacheKey, () => this.#fetch(url, cacheKey, checksum, signal, 'file'));
  }

  /** The download extracted into a directory (cached dependencies, bind-mounted into containers). */
  fetchDirectory(url: string, cacheKey: string, checksum: Checksum, signal: AbortSignal): Promise<Lease> {
    return this.#withKey(cacheKey, () => this.#fetch(url, cacheKey, checksum, signal, 'dir'));
  }

  /**
   * An adopted container still has `dir` mounted: hold it as a lease (undefined when the cache does not know
   * the directory, e.g. it was a one-off download).
   */
  retainDirectory(dir: string): Lease | undefined {
    for (const v of this.#versions()) {
      if (v.dir === dir) {
        v.dirUses++;
        return { path: dir, downloaded: 0, release: () => this.#release(v, 'dir') };
      }
    }
    return undefined;
  }

  /** Removes replaced versions nobody holds (after a restart, once adopted containers have retained theirs). */
  async pruneUnused(): Promise<void> {
    for (const v of [...this.#retired]) if (v.fileUses === 0 && v.dirUses === 0) await this.#drop(v);
    await this.#save();
  }

  async #fetch(
    url: string,
    cacheKey: string,
    checksum: Checksum,
    signal: AbortSignal,
    as: 'file' | 'dir',
  ): Promise<Lease> {
    const h = hashKey(cacheKey);
    const entry = this.#entries.get(h);
    const id = `${h}-${++this.#seq}`;
    const download = path.join(this.#tempDir, `${id}.download`);
    const work = path.join(this.#tempDir, `${id}.work`);
    await mkdir(work, { recursive: true });
    try {
      const result = await this.downloader.download(url, download, { checksum, cached: entry?.caching, signal });
      if (result.notModified && entry) {
        this.o.metrics?.hit();
        entry.access = this.#now();
        await this.#save();
        return await this.#lease(entry.current, as, 0);
      }
      if (result.notModified) throw new Error('the server answered 304 Not Modified to an unconditional request');
      this.o.metrics?.miss();
      const transformed = await tarTransform(download, work);
      const size = (await stat(transformed)).size;
      if (!isCacheable(result.caching)) {
        // Diego refuses to cache a directory without ETag/Last-Modified; we use it once (docs/differences.md).
        if (entry) await this.#replace(h, undefined);
        const once = this.#version(id, size, false);
        await rename(transformed, once.tar);
        this.#retired.add(once);
        return await this.#lease(once, as, result.size);
      }
      await this.#makeRoom(size * (as === 'dir' ? 2 : 1), h);
      const v = this.#version(id, size, false);
      await rename(transformed, v.tar);
      await this.#replace(h, { key: cacheKey, caching: result.caching, access: this.#now(), current: v });
      return await this.#lease(v, as, result.size);
    } finally {
      await rm(download, { force: true });
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Takes a use of `v` as a file or directory (extracting the directory the first time). */
  async #lease(v: Version, as: 'file' | 'dir', downloaded: number): Promise<Lease> {
    if (as === 'dir') {
      if (!v.dir) {
        const dir = path.join(this.#entriesDir, `${v.id}.d`);
        const tmp = path.join(this.#tempDir, `${v.id}.d`);
        await rm(tmp, { recursive: true, force: true });
        await mkdir(tmp, { recursive: true });
        await untar(v.tar, tmp);
        await rename(tmp, dir);
        v.dir = dir;
        v.bytes *= 2;
        await this.#save();
      }
      v.dirUses++;
    } else v.fileUses++;
    const leased = as === 'dir' ? v.dir! : v.tar;
    let released = false;
    return {
      path: leased,
      downloaded,
      release: () => {
        if (released) return Promise.resolve();
        released = true;
        return this.#release(v, as);
      },
    };
  }

  async #release(v: Version, as: 'file' | 'dir'): Promise<void> {
    if (as === 'dir') v.dirUses = Math.max(0, v.dirUses - 1);
    else v.fileUses = Math.max(0, v.fileUses - 1);
    if (this.#retired.has(v) && v.fileUses === 0 && v.dirUses === 0) {
      await this.#drop(v);
      await this.#save();
    }
  }

  /** Puts `next` (or nothing) under key hash `h`; the old version goes now, or when its last lease does. */
  async #replace(h: string, next: Entry | undefined): Promise<void> {
    const old = this.#entries.get(h);
    if (next) this.#entries.set(h, next);
    else this.#entries.delete(h);
    if (old && old.current !== next?.current) {
      if (old.current.fileUses === 0 && old.current.dirUses === 0) await this.#drop(old.current);
      else this.#retired.add(old.current);
    }
    await this.#save();
  }

  /** Evicts least recently used entries nobody holds until `bytes` more fit (cacheddownloader makeRoom). */
  async #makeRoom(bytes: number, except: string): Promise<void> {
    let used = this.usedBytes();
    while (used + bytes > this.maxBytes) {
      let oldest: [string, Entry] | undefined;
      for (const [h, e] of this.#entries) {
        if (h === except || e.current.fileUses > 0 || e.current.dirUses > 0) continue;
        if (!oldest || e.access < oldest[1].access) oldest = [h, e];
      }
      if (!oldest) return; // everything left is in use: the bound is exceeded until leases are released
      used -= oldest[1].current.bytes;
      this.#entries.delete(oldest[0]);
      await this.#drop(oldest[1].current);
      this.o.metrics?.evicted();
      this.#logger.info({ cacheKey: oldest[1].key }, 'download-cache: evicted');
    }
  }

  async #drop(v: Version): Promise<void> {
    this.#retired.delete(v);
    await rm(v.tar, { force: true });
    if (v.dir) await rm(v.dir, { recursive: true, force: true });
    this.#report();
  }

  #version(id: string, bytes: number, dir: boolean): Version {
    return {
      id,
      tar: path.join(this.#entriesDir, `${id}.tar`),
      ...(dir ? { dir: path.join(this.#entriesDir, `${id}.d`) } : {}),
      bytes,
      fileUses: 0,
      dirUses: 0,
    };
  }

  *#versions(): Iterable<Version> {
    for (const e of this.#entries.values()) yield e.current;
    yield* this.#retired;
  }

  #report(): void {
    this.o.metrics?.size(this.usedBytes());
  }

  /** Writes the index (serialized, atomic); a failure is logged, the cache keeps working from memory. */
  #save(): Promise<void> {
    this.#report();
    const state: SavedState = {
      seq: this.#seq,
      entries: [...this.#entries.values()].map((e) => ({
        key: e.key,
        caching: e.caching,
        access: e.access,
        id: e.current.id,
        bytes: e.current.bytes,
        dir: e.current.dir !== undefined,
      })),
      retired: [...this.#retired].map((v) => ({ id: v.id, bytes: v.bytes, dir: v.dir !== undefined })),
    };
    const file = path.join(this.dir, 'state.json');
    this.#saving = this.#saving.then(async () => {
      try {
        await writeFileAtomic(file, JSON.stringify(state));
      } catch (err) {
        this.#logger.error({ err: String(err) }, 'download-cache: saving the index failed');
      }
    });
    return this.#saving;
  }

  /** Runs fn after every earlier call for the same key (cacheddownloader's per-key in-progress channel). */
  #withKey<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(key, settled);
    void settled.then(() => {
      if (this.#locks.get(key) === settled) this.#locks.delete(key);
    });
    return run;
  }
}

function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Extracts a tar into an empty directory as the agent (files owned by it, modes kept, nothing above `dir`). */
async function untar(tarFile: string, dir: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(
      'tar',
      ['-x', '-f', tarFile, '-C', dir, '--no-same-owner', '--no-overwrite-dir'],
      { maxBuffer: 1024 * 1024 },
      (err, _out, stderr) =>
        err ? reject(new Error(`extracting the download failed: ${stderr.trim() || err.message}`)) : resolve(),
    );
  });
}
