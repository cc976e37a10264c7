// Instance identity credentials (executor containerstore/credmanager.go + instance_identity_handler.go): every
// container gets a certificate signed by the cell's instance identity CA — CN and DNS SAN the container guid
// (an LRP's instance guid, a task's guid), IP SAN the container's address, OUs from the work's
// certificate_properties (Cloud Controller sends organization:, space:, app:) — with its key, in a host
// directory bind-mounted read-only at /etc/cf-instance-credentials (instance.crt holds the leaf then the CA,
// instance.key the key; CF_INSTANCE_CERT / CF_INSTANCE_KEY point at them). Certificates are short-lived and
// re-issued before they expire: at validity − 30 min when the validity exceeds 4 h, else at 7/8 of it
// (credmanager.go calculateCredentialRotationPeriod). Files are replaced atomically (write, then rename).
// Keys are ECDSA P-256 where Diego uses RSA-3072 (docs/differences.md).
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LeafIssuer, type SigningCA } from '../../lib/x509.ts';
import type { BindMount, EnvVar } from '../backends/types.ts';
import { noopLogger, type ExecutorLogger } from './log.ts';

/** Where the credentials appear in the container (executor initializer: instance identity container path). */
export const CREDENTIALS_PATH = '/etc/cf-instance-credentials';
/** Diego's instance_identity_validity_period default. */
export const DEFAULT_IDENTITY_VALIDITY_MS = 24 * 3_600_000;

export interface IdentityMetrics {
  issued(): void;
  failed(): void;
}

export interface InstanceIdentityOptions {
  ca: SigningCA;
  /** Host directory holding one directory per container (created 0700: only the agent reads keys there). */
  dir: string;
  validityMs?: number;
  now?: () => number;
  logger?: ExecutorLogger;
  metrics?: IdentityMetrics;
}

export interface IdentitySubject {
  /** The container guid: CN and DNS SAN. */
  guid: string;
  /** The container's address (internal, else external), for the IP SAN. */
  ip?: string;
  organizationalUnits?: string[];
}

/** cred_manager.go calculateCredentialRotationPeriod. */
export function rotationDelayMs(validityMs: number): number {
  return validityMs > 4 * 3_600_000 ? validityMs - 30 * 60_000 : validityMs - validityMs / 8;
}

export class InstanceIdentity {
  readonly validityMs: number;
  readonly #issuer: LeafIssuer;
  readonly #o: InstanceIdentityOptions;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #logger: ExecutorLogger;

  constructor(o: InstanceIdentityOptions) {
    this.#o = o;
    this.#issuer = new LeafIssuer(o.ca);
    this.validityMs = o.validityMs ?? DEFAULT_IDENTITY_VALIDITY_MS;
    this.#logger = o.logger ?? noopLogger;
  }

  /** The CA certificate (PEM), e.g. for a trusted-certificates directory. */
  get caPem(): string {
    return this.#issuer.ca.toString();
  }

  dirOf(handle: string): string {
    return path.join(this.#o.dir, handle);
  }

  /** Creates the container's (empty) credentials directory: the bind mount and env to create the container with. */
  async prepare(handle: string): Promise<{ bindMount: BindMount; env: EnvVar[] }> {
    await mkdir(this.#o.dir, { recursive: true, mode: 0o700 });
    await chmod(this.#o.dir, 0o700);
    await mkdir(this.dirOf(handle), { recursive: true, mode: 0o755 });
    return {
      bindMount: { srcPath: this.dirOf(handle), dstPath: CREDENTIALS_PATH, mode: 'ro' },
      env: [
        { name: 'CF_INSTANCE_CERT', value: path.posix.join(CREDENTIALS_PATH, 'instance.crt') },
        { name: 'CF_INSTANCE_KEY', value: path.posix.join(CREDENTIALS_PATH, 'instance.key') },
      ],
    };
  }

  /** Issues the container's certificate now and keeps re-issuing it before it expires, until remove(). */
  async start(handle: string, subject: IdentitySubject): Promise<void> {
    await this.#issue(handle, subject);
    this.#schedule(handle, subject);
  }

  /** Stops rotation and deletes the container's credentials. */
  async remove(handle: string): Promise<void> {
    clearTimeout(this.#timers.get(handle));
    this.#timers.delete(handle);
    await rm(this.dirOf(handle), { recursive: true, force: true });
  }

  /** Stops every rotation (the agent stops; the next agent re-issues for the containers it adopts). */
  stopAll(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }

  #schedule(handle: string, subject: IdentitySubject): void {
    const timer = setTimeout(() => {
      void this.#issue(handle, subject).then(
        () => this.#timers.has(handle) && this.#schedule(handle, subject),
        (err: unknown) => {
          this.#logger.error({ err: String(err), handle }, 'instance-identity: rotation failed; retrying in 1 min');
          const retry = setTimeout(() => this.#timers.has(handle) && this.#schedule(handle, subject), 60_000);
          retry.unref();
          this.#timers.set(handle, retry);
        },
      );
    }, rotationDelayMs(this.validityMs));
    timer.unref();
    this.#timers.set(handle, timer);
  }

  async #issue(handle: string, subject: IdentitySubject): Promise<void> {
    const now = (this.#o.now ?? Date.now)();
    try {
      const cert = await this.#issuer.issue({
        commonName: subject.guid,
        dnsNames: [subject.guid],
        ipAddresses: subject.ip ? [subject.ip] : [],
        organizationalUnits: subject.organizationalUnits ?? [],
        notBefore: new Date(now),
        notAfter: new Date(now + this.validityMs),
      });
      const dir = this.dirOf(handle);
      await writeFile(path.join(dir, 'instance.key.tmp'), cert.keyPem, { mode: 0o644 });
      await writeFile(path.join(dir, 'instance.crt.tmp'), cert.chainPem, { mode: 0o644 });
      await rename(path.join(dir, 'instance.key.tmp'), path.join(dir, 'instance.key'));
      await rename(path.join(dir, 'instance.crt.tmp'), path.join(dir, 'instance.crt'));
      this.#o.metrics?.issued();
    } catch (err) {
      this.#o.metrics?.failed();
      throw err;
    }
  }
}
