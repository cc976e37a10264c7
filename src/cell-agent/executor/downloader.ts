// One HTTP download to a file, as cacheddownloader's downloader.go does it: GET (conditional when the caller
// has a cached copy: If-None-Match / If-Modified-Since, and 304 means "keep yours"), up to 4 attempts with
// backoff, a checksum failure or a cancel not retried, "Download failed: Status code N" for other answers.
// Concurrency is bounded by the cell-wide limiter (Diego's max_concurrent_downloads = 5).
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { httpFetch } from '../../lib/http.ts';
import { ChecksumFailedError, ChecksumValidator } from './checksum.ts';
import { toStepError } from './errors.ts';
import { noopLogger, type ExecutorLogger } from './log.ts';
import { sleep, type Semaphore, withLimiter } from './step.ts';

/** cacheddownloader MAX_DOWNLOAD_ATTEMPTS, RETRY_WAIT_MIN, RETRY_WAIT_MAX */
export const DOWNLOAD_ATTEMPTS = 4;
export const DOWNLOAD_RETRY_WAIT_MIN_MS = 500;
export const DOWNLOAD_RETRY_WAIT_MAX_MS = 5_000;

/** What a server said about a response's freshness (cacheddownloader CachingInfoType). */
export interface CachingInfo {
  etag?: string;
  lastModified?: string;
}

export interface Checksum {
  algorithm?: string;
  value?: string;
}

export type DownloadResult =
  { notModified: true } | { notModified: false; file: string; size: number; caching: CachingInfo };

export interface DownloaderOptions {
  /** Shared by every download of the cell. */
  limiter?: Semaphore;
  attempts?: number;
  /** First retry wait; doubled per attempt up to DOWNLOAD_RETRY_WAIT_MAX_MS. */
  retryWaitMs?: number;
  logger?: ExecutorLogger;
}

export const isCacheable = (c: CachingInfo): boolean => Boolean(c.etag || c.lastModified);

export class Downloader {
  readonly #o: DownloaderOptions;
  readonly #logger: ExecutorLogger;

  constructor(opts: DownloaderOptions = {}) {
    this.#o = opts;
    this.#logger = opts.logger ?? noopLogger;
  }

  /** Downloads `url` into `file` (created or truncated); with `cached`, a 304 answer leaves `file` alone. */
  download(
    url: string,
    file: string,
    opts: { checksum?: Checksum; cached?: CachingInfo; signal: AbortSignal },
  ): Promise<DownloadResult> {
    return withLimiter(this.#o.limiter, opts.signal, async () => {
      const attempts = this.#o.attempts ?? DOWNLOAD_ATTEMPTS;
      const minWait = this.#o.retryWaitMs ?? DOWNLOAD_RETRY_WAIT_MIN_MS;
      let lastError: unknown;
      for (let attempt = 0; attempt < attempts; attempt++) {
        try {
          return await this.#once(url, file, opts);
        } catch (err) {
          await rm(file, { force: true });
          if (opts.signal.aborted || err instanceof ChecksumFailedError) throw err;
          lastError = err;
          this.#logger.info({ attempt, err: toStepError(err).message, url: redact(url) }, 'download: retrying');
          if (attempt < attempts - 1) {
            await sleep(Math.min(minWait * 2 ** attempt, DOWNLOAD_RETRY_WAIT_MAX_MS), opts.signal);
          }
        }
      }
      throw lastError;
    });
  }

  async #once(
    url: string,
    file: string,
    opts: { checksum?: Checksum; cached?: CachingInfo; signal: AbortSignal },
  ): Promise<DownloadResult> {
    const { checksum, cached, signal } = opts;
    const validator =
      checksum?.algorithm || checksum?.value ? new ChecksumValidator(checksum.algorithm ?? '') : undefined;
    const headers: Record<string, string> = {};
    if (cached?.etag) headers['If-None-Match'] = cached.etag;
    if (cached?.lastModified) headers['If-Modified-Since'] = cached.lastModified;
    const res = await httpFetch(url, { signal, headers });
    if (res.status === 304 && cached && isCacheable(cached)) {
      await res.body?.cancel();
      return { notModified: true };
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      throw new Error(`Download failed: Status code ${res.status}`);
    }
    let size = 0;
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          validator?.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(file),
      { signal },
    );
    validator?.validate(checksum?.value ?? '');
    return {
      notModified: false,
      file,
      size,
      caching: {
        ...(res.headers.get('etag') ? { etag: res.headers.get('etag') ?? '' } : {}),
        ...(res.headers.get('last-modified') ? { lastModified: res.headers.get('last-modified') ?? '' } : {}),
      },
    };
  }
}

/** Download URLs often carry credentials; keep them out of the operator log. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<unparseable url>';
  }
}
