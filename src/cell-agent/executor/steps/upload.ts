// UploadAction (executor depot/steps/upload_step.go + depot/uploader/uploader.go): stream `from` out of the
// container, keep the first tar entry in a temp file, and POST it to `to` (up to 3 attempts) with
// Content-MD5 and Content-Digest headers. Errors that could contain the URL are never written to the log.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Action } from '../../../crds/actions.ts';
import type { Container } from '../../backends/types.ts';
import { extractFirstTarEntry } from '../archive.ts';
import { cancelledError, emittableError, StepError, toStepError } from '../errors.ts';
import { byteSize } from '../format.ts';
import { noopLogger, type ExecutorLogger, type LogStreamer } from '../log.ts';
import { type Ready, type Semaphore, type Step, withLimiter } from '../step.ts';

export type UploadActionModel = NonNullable<Action['upload']>;

/** uploader.go: three attempts, no wait in between. */
export const UPLOAD_ATTEMPTS = 3;

// upload_step.go's messages.
export const ERR_CREATE_TMP_DIR = 'Failed to create temp dir';
export const ERR_ESTABLISH_STREAM = 'Failed to establish stream from container';
export const ERR_READ_TAR = 'Failed to find first item in tar stream';
export const ERR_COPY_STREAM_TO_TMP = 'Failed to copy stream contents into temp file';
export const ERR_PARSING_URL = 'Failed to parse URL';
export const ERR_UPLOAD_PAYLOAD = 'Failed to upload payload';

export interface UploadStepOptions {
  container: Container;
  action: UploadActionModel;
  /** Already switched to the action's log_source. */
  log: LogStreamer;
  tempDir?: string;
  /** Shared across a cell's uploads (Diego: max_concurrent_uploads). */
  limiter?: Semaphore;
  attempts?: number;
  logger?: ExecutorLogger;
}

export class UploadStep implements Step {
  readonly #opts: UploadStepOptions;
  readonly #logger: ExecutorLogger;

  constructor(opts: UploadStepOptions) {
    this.#opts = opts;
    this.#logger = opts.logger ?? noopLogger;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    ready?.();
    await withLimiter(this.#opts.limiter, signal, () => this.#upload(signal));
  }

  async #upload(signal: AbortSignal): Promise<void> {
    const { action, container, log } = this.#opts;
    if (signal.aborted) throw cancelledError();
    if (action.artifact) log.stdout(`Uploading ${action.artifact}...`);

    let url: URL;
    try {
      url = new URL(action.to);
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new Error(`unsupported protocol ${url.protocol}`);
    } catch (err) {
      this.#emitError(this.#artifactError(ERR_PARSING_URL));
      throw new StepError('upload', ERR_PARSING_URL, { cause: err });
    }

    let workDir: string;
    try {
      workDir = await mkdtemp(path.join(this.#opts.tempDir ?? tmpdir(), 'upload-'));
    } catch (err) {
      throw this.#fail(ERR_CREATE_TMP_DIR, err);
    }
    try {
      let tar: Readable;
      try {
        tar = await container.streamOut(action.from, { user: action.user });
      } catch (err) {
        throw this.#fail(ERR_ESTABLISH_STREAM, err);
      }
      const file = path.join(workDir, 'compressed');
      try {
        await extractFirstTarEntry(tar, file);
      } catch (err) {
        if (signal.aborted) throw cancelledError();
        const reading = err instanceof Error && /EOF|tar header/.test(err.message);
        throw this.#fail(reading ? ERR_READ_TAR : ERR_COPY_STREAM_TO_TMP, err);
      }

      let uploaded: number;
      try {
        uploaded = await this.#post(file, url, signal);
      } catch (err) {
        if (signal.aborted) throw cancelledError();
        this.#logger.error({ err: toStepError(err).message }, 'upload-step: failed-to-upload');
        this.#emitError(this.#artifactError(ERR_UPLOAD_PAYLOAD));
        throw new StepError('upload', toStepError(err).message, { cause: err });
      }
      if (action.artifact) log.stdout(`Uploaded ${action.artifact} (${byteSize(uploaded)})`);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }

  async #post(file: string, url: URL, signal: AbortSignal): Promise<number> {
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
      md5.update(chunk);
      sha256.update(chunk);
      size += chunk.length;
    }
    const headers = {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(size),
      'Content-MD5': md5.digest('base64'),
      'Content-Digest': `sha-256=:${sha256.digest('base64')}:`,
    };
    const attempts = this.#opts.attempts ?? UPLOAD_ATTEMPTS;
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        await postOnce(url, file, headers, signal);
        return size;
      } catch (err) {
        if (signal.aborted) throw err;
        lastError = err;
        this.#logger.info({ attempt, err: toStepError(err).message }, 'upload-step: failed-uploading');
      }
    }
    throw lastError;
  }

  #fail(message: string, cause: unknown): StepError {
    const text = this.#artifactError(message);
    this.#logger.error({ err: toStepError(cause).message }, `upload-step: ${message}`);
    this.#emitError(text);
    return emittableError('upload', text, cause);
  }

  #artifactError(message: string): string {
    return this.#opts.action.artifact ? `${message} for ${this.#opts.action.artifact}` : message;
  }

  #emitError(text: string): void {
    if (this.#opts.action.artifact) this.#opts.log.stderr(text);
  }
}

async function postOnce(url: URL, file: string, headers: Record<string, string>, signal: AbortSignal): Promise<void> {
  const request = (url.protocol === 'https:' ? https : http).request(url, { method: 'POST', headers, signal });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  await Promise.all([pipeline(createReadStream(file), request), response]);
  const res = await response;
  res.resume();
  if ((res.statusCode ?? 0) >= 400) throw new Error(`Upload failed: Status code ${res.statusCode}`);
}
