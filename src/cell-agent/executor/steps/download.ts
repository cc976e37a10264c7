// DownloadAction (executor depot/steps/download_step.go + cacheddownloader downloader.go): GET the archive to a
// temp file (up to 4 attempts with backoff; a checksum failure is not retried), turn it into a tar and stream
// it into the container at `to`. Progress lines appear only when `artifact` is set; failures always log.
// Not done: the cell cache (cacheKey, ETag/If-Modified-Since revalidation) — every download is fresh.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Action } from '../../../crds/actions.ts';
import type { Container } from '../../backends/types.ts';
import { tarTransform } from '../archive.ts';
import { ChecksumFailedError, ChecksumValidator } from '../checksum.ts';
import { cancelledError, emittableError, toStepError } from '../errors.ts';
import { byteSize } from '../format.ts';
import { noopLogger, type ExecutorLogger, type LogStreamer } from '../log.ts';
import { sleep, type Ready, type Semaphore, type Step, withLimiter } from '../step.ts';

export type DownloadActionModel = NonNullable<Action['download']>;

/** cacheddownloader MAX_DOWNLOAD_ATTEMPTS, RETRY_WAIT_MIN, RETRY_WAIT_MAX */
export const DOWNLOAD_ATTEMPTS = 4;
export const DOWNLOAD_RETRY_WAIT_MIN_MS = 500;
export const DOWNLOAD_RETRY_WAIT_MAX_MS = 5_000;
/** Diego truncates a download error written to the log to 1024 bytes. */
const MAX_EMITTED_ERROR = 1024;

export interface DownloadStepOptions {
  container: Container;
  action: DownloadActionModel;
  /** Already switched to the action's log_source. */
  log: LogStreamer;
  /** Where the archive is downloaded to before it goes into the container (default: the OS temp dir). */
  tempDir?: string;
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
    await withLimiter(this.#opts.limiter, signal, () => this.#download(signal));
  }

  async #download(signal: AbortSignal): Promise<void> {
    const { action, container, log } = this.#opts;
    const artifact = action.artifact ?? '';
    if (signal.aborted) throw cancelledError();
    if (artifact) log.stdout(`Downloading ${artifact}...`);

    const workDir = await mkdtemp(path.join(this.#opts.tempDir ?? tmpdir(), 'download-'));
    try {
      let tarFile: string;
      let size: number;
      try {
        const fetched = await this.#fetch(workDir, signal);
        size = fetched.size;
        tarFile = await tarTransform(fetched.file, workDir);
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
      await rm(workDir, { recursive: true, force: true });
    }
  }

  async #fetch(workDir: string, signal: AbortSignal): Promise<{ file: string; size: number }> {
    const attempts = this.#opts.attempts ?? DOWNLOAD_ATTEMPTS;
    const minWait = this.#opts.retryWaitMs ?? DOWNLOAD_RETRY_WAIT_MIN_MS;
    const file = path.join(workDir, 'download');
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        return { file, size: await this.#fetchOnce(file, signal) };
      } catch (err) {
        if (signal.aborted || err instanceof ChecksumFailedError) throw err;
        lastError = err;
        this.#logger.info({ attempt, err: toStepError(err).message }, 'download-step: retrying');
        if (attempt < attempts - 1) {
          await sleep(Math.min(minWait * 2 ** attempt, DOWNLOAD_RETRY_WAIT_MAX_MS), signal);
        }
      }
    }
    throw lastError;
  }

  async #fetchOnce(file: string, signal: AbortSignal): Promise<number> {
    const { checksumAlgorithm, checksumValue } = this.#opts.action;
    const validator = checksumAlgorithm || checksumValue ? new ChecksumValidator(checksumAlgorithm ?? '') : undefined;
    const res = await fetch(this.#opts.action.from, { signal });
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
    validator?.validate(checksumValue ?? '');
    return size;
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

/** Download URLs often carry credentials; keep them out of the operator log. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<unparseable url>';
  }
}
