// Download checksums, after cacheddownloader hash_validator.go (same messages). Diego's validator knows md5,
// sha1 and sha256; sha512 is added because an EXCLUSIVE image layer's SHA512 digest becomes a download checksum
// (models/image_layer.go ToDownloadActions), which Diego's own validator would then refuse.
import { createHash, type Hash } from 'node:crypto';

export type ChecksumAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';

const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { md5: 32, sha1: 40, sha256: 64, sha512: 128 };

/** cacheddownloader.ChecksumFailedError: "Checksum failed: '<msg>', expected '<e>', got '<r>'". */
export class ChecksumFailedError extends Error {
  constructor(reason: string, expected: string, received: string) {
    super(`Checksum failed: '${reason}', expected '${expected}', got '${received}'`);
    this.name = 'ChecksumFailedError';
  }
}

export class ChecksumValidator {
  readonly algorithm: ChecksumAlgorithm;
  readonly #hash: Hash;

  constructor(algorithm: string) {
    const name = algorithm.toLowerCase();
    if (name !== 'md5' && name !== 'sha1' && name !== 'sha256' && name !== 'sha512') {
      throw new ChecksumFailedError('algorithm invalid', '[md5, sha1, sha256]', algorithm);
    }
    this.algorithm = name;
    this.#hash = createHash(name);
  }

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
  }

  /** Throws ChecksumFailedError unless the data hashed so far has the (hex, optionally quoted) value. */
  validate(value: string): void {
    const expected = value.replace(/^"+|"+$/g, '');
    const actual = this.#hash.digest('hex');
    if (expected.length !== HEX_LENGTH[this.algorithm] || !/^[0-9a-fA-F]*$/.test(expected)) {
      throw new ChecksumFailedError('checksum missing or invalid', 'a valid checksum', value);
    }
    if (expected.toLowerCase() !== actual) throw new ChecksumFailedError('checksum mismatch', value, `"${actual}"`);
  }
}
