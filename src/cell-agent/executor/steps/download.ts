// DownloadAction (executor depot/steps/download_step.go): fetch the archive (downloader.ts: retries, checksum,
// the cell-wide concurrency bound) — through the cell's download cache when the action has a cache_key and the
// executor has a cache (download-cache.ts: revalidated with ETag/Last-Modified) — as a tar, and stream it into
// the container at `to` as `user`. Progress lines appear only when `artifact` is set; failures always log.
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Action } from '../../../crds/actions.ts';
import type { Container } from '../../backends/types.ts';
import { tarTransform } from '../archive.ts';
import type { DownloadCache } from '../download-cache.ts';
import { Downloader, redact } from '../downloader.ts';
import { cancelledError, emittableError, toStepError } from '../errors.ts';
import { byteSize } from '../format.ts';
import { noopLogger, type ExecutorLogger, type LogStreamer } from '../log.ts';
import type { Ready, Semaphore, Step } from '../step.ts';

export type DownloadActionModel = NonNullable<Action['download']>;

export { DOWNLOAD_ATTEMPTS, DOWNLOAD_RETRY_WAIT_MAX_MS, DOWNLOAD_RETRY_WAIT_MIN_MS } from '../downloader.ts';
/** Diego truncates a download error written to the log to 1024 bytes. */
const MAX_EMITTED_ERROR = 1024;

export interface DownloadStepOptions {
  container: Container;
  action: DownloadActionModel;
  /** Already switched to the action's log_source. */
  log: LogStreamer;
  /** Where the archive is downloaded to before it goes into the container (default: the OS temp dir). */
  tempDir?: string;
  /** The cell's downloader (its limiter bounds concurrent transfers); one is made from the options below if not. */
  downloader?: Downloader;
  /** The cell's download cache, used when the action has a cacheKey. */
  cache?: DownloadCache;
  /** Shared across a cell's downloads (Diego: max_concurrent_downloads = 5). */
  limiter?: Semaphore;
  attempts?: number;
  /** First retry wait; doubled per attempt up to DOWNLOAD_RETRY_WAIT_MAX_MS. */
  retryWaitMs?: number;
  logger?: ExecutorLogger;
}

export class DownloadStep implements Step {
  readonly #opts: DownloadStepOptions;
  readonly #logger: ExecutorLogger;

  constructor(opts: DownloadStepOptions) {
    this.#opts = opts;
    this.#logger = opts.logger ?? noopLogger;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    ready?.();
    await this.#download(signal);
  }

  async #download(signal: AbortSignal): Promise<void> {
    const { action, container, log } = this.#opts;
    const artifact = action.artifact ?? '';
    if (signal.aborted) throw cancelledError();
    if (artifact) log.stdout(`Downloading ${artifact}...`);

    const workDir = await mkdtemp(path.join(this.#opts.tempDir ?? tmpdir(), 'download-'));
    let release = () => Promise.resolve();
    try {
      let tarFile: string;
      let size: number;
      try {
        const fetched = await this.#fetch(workDir, signal);
        size = fetched.size;
        tarFile = fetched.tar;
        release = fetched.release;
      } catch (err) {
        if (signal.aborted) throw cancelledError();
        this.#logger.error({ err: toStepError(err).message, from: redact(action.from) }, 'download-step: fetch-failed');
        const message = artifact ? `Downloading ${artifact} failed` : 'Downloading failed';
        this.#emitError(message);
        throw emittableError('download', message, err);
      }

      try {
        const tar = createReadStream(tarFile);
        const onAbort = () => tar.destroy(new Error('download cancelled'));
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          await container.streamIn(action.to, tar, { user: action.user });
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
      } catch (err) {
        if (signal.aborted) throw cancelledError();
        const reason = toStepError(err).message;
        const message = artifact
          ? `Copying ${artifact} into the container failed: ${reason}`
          : `Copying into the container failed: ${reason}`;
        this.#emitError(message);
        throw emittableError('download', message, err);
      }

      if (artifact) log.stdout(size !== 0 ? `Downloaded ${artifact} (${byteSize(size)})` : `Downloaded ${artifact}`);
    } finally {
      await release();
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /** The archive as a tar file, from the cache (size 0 when it was warm) or downloaded into workDir. */
  async #fetch(
    workDir: string,
    signal: AbortSignal,
  ): Promise<{ tar: string; size: number; release: () => Promise<void> }> {
    const { from, cacheKey, checksumAlgorithm, checksumValue } = this.#opts.action;
    const checksum = { algorithm: checksumAlgorithm, value: checksumValue };
    if (cacheKey && this.#opts.cache) {
      const lease = await this.#opts.cache.fetchFile(from, cacheKey, checksum, signal);
      return { tar: lease.path, size: lease.downloaded, release: () => lease.release() };
    }
    const downloader =
      this.#opts.downloader ??
      new Downloader({
        limiter: this.#opts.limiter,
        attempts: this.#opts.attempts,
        retryWaitMs: this.#opts.retryWaitMs,
        logger: this.#logger,
      });
    const file = path.join(workDir, 'download');
    const result = await downloader.download(from, file, { checksum, signal });
    if (result.notModified) throw new Error('the server answered 304 Not Modified to an unconditional request');
    return { tar: await tarTransform(file, workDir), size: result.size, release: () => Promise.resolve() };
  }

  #emitError(message: string): void {
    let text = message;
    if (Buffer.byteLength(text) > MAX_EMITTED_ERROR) {
      const suffix = ' (error truncated)';
      text =
        Buffer.from(text)
          .subarray(0, MAX_EMITTED_ERROR - suffix.length)
          .toString('utf8') + suffix;
    }
    this.#opts.log.stderr(text);
  }
}
