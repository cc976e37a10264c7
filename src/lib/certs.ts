// Small X.509 helpers built on the `openssl` CLI (3.x or 1.1.1), because Node can parse
// certificates but cannot create them and we add no npm dependencies for this.
// Keys are ECDSA P-256 (generated with node:crypto, PKCS#8 PEM); certificates are signed
// by openssl. Used for the test control plane, webhook serving certs and mutual TLS.
import { execFile } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

/** A PEM certificate and its PEM private key. */
export interface CertKeyPair {
  certPem: string;
  keyPem: string;
}

/** serverAuth, clientAuth, or both extended key usages. */
export type CertUsage = 'server' | 'client' | 'both';

export interface CAOptions {
  /** Default "diego-operator-ca". */
  commonName?: string;
  /** Validity in days. Default 365. */
  days?: number;
}

export interface LeafOptions {
  commonName: string;
  /** Subject O= values; Kubernetes maps these to groups for client certs. */
  organizations?: string[];
  ipAddresses?: string[];
  dnsNames?: string[];
  usage: CertUsage;
  /** Validity in days. Default 365. */
  days?: number;
}

/** Creates a self-signed ECDSA P-256 CA. */
export async function createCA(opts: CAOptions = {}): Promise<CertKeyPair> {
  const keyPem = await newKeyPem();
  const config = [
    ...reqSection(),
    '[ext]',
    'basicConstraints = critical, CA:TRUE',
    'keyUsage = critical, keyCertSign, cRLSign, digitalSignature',
    'subjectKeyIdentifier = hash',
  ];
  const certPem = await withScratchDir(async (dir) => {
    await writeFile(join(dir, 'ca.key'), keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'openssl.cnf'), config.join('\n') + '\n');
    // prettier-ignore
    await openssl([
      'req', '-x509', '-new', '-config', join(dir, 'openssl.cnf'), '-extensions', 'ext',
      '-key', join(dir, 'ca.key'), '-subj', subject(opts.commonName ?? 'diego-operator-ca', []),
      '-days', String(opts.days ?? 365), '-sha256', '-set_serial', serial(),
      '-out', join(dir, 'ca.crt'),
    ]);
    return readFile(join(dir, 'ca.crt'), 'utf8');
  });
  return { certPem, keyPem };
}

/** Issues a leaf certificate signed by `ca` with the given subject, SANs and usage. */
export async function issueCert(ca: CertKeyPair, opts: LeafOptions): Promise<CertKeyPair> {
  const keyPem = await newKeyPem();
  const sans = [
    ...(opts.dnsNames ?? []).map((d, i) => `DNS.${i + 1} = ${d}`),
    ...(opts.ipAddresses ?? []).map((ip, i) => `IP.${i + 1} = ${ip}`),
  ];
  const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth, clientAuth' }[opts.usage];
  const config = [
    ...reqSection(),
    '[ext]',
    'basicConstraints = critical, CA:FALSE',
    // ECDSA keys sign; keyEncipherment only applies to RSA key exchange.
    'keyUsage = critical, digitalSignature',
    `extendedKeyUsage = ${eku}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid, issuer',
    ...(sans.length > 0 ? ['subjectAltName = @sans', '[sans]', ...sans] : []),
  ];
  const certPem = await withScratchDir(async (dir) => {
    const f = (name: string) => join(dir, name);
    await writeFile(f('ca.crt'), ca.certPem);
    await writeFile(f('ca.key'), ca.keyPem, { mode: 0o600 });
    await writeFile(f('leaf.key'), keyPem, { mode: 0o600 });
    await writeFile(f('openssl.cnf'), config.join('\n') + '\n');
    // Two steps (CSR, then sign) instead of `req -x509 -CA`, which needs OpenSSL >= 3.0.
    // prettier-ignore
    await openssl([
      'req', '-new', '-config', f('openssl.cnf'), '-key', f('leaf.key'),
      '-subj', subject(opts.commonName, opts.organizations ?? []), '-out', f('leaf.csr'),
    ]);
    // prettier-ignore
    await openssl([
      'x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'),
      '-set_serial', serial(), '-days', String(opts.days ?? 365), '-sha256',
      '-extfile', f('openssl.cnf'), '-extensions', 'ext', '-out', f('leaf.crt'),
    ]);
    return readFile(f('leaf.crt'), 'utf8');
  });
  return { certPem, keyPem };
}

/**
 * Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (0600), creating `dir` if needed.
 * Returns the two paths.
 */
export async function writeCertFiles(
  dir: string,
  name: string,
  pair: CertKeyPair,
): Promise<{ certPath: string; keyPath: string }> {
  await mkdir(dir, { recursive: true });
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  await writeFile(certPath, pair.certPem);
  await writeFile(keyPath, pair.keyPem, { mode: 0o600 });
  return { certPath, keyPath };
}

async function newKeyPem(): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return privateKey;
}

// A self-contained config so the system openssl.cnf (which may add its own
// extensions or prompts) never changes what we issue.
function reqSection(): string[] {
  return ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]'];
}

// `-subj` syntax is /K=V/K=V; a backslash escapes the separators inside values.
function subject(cn: string, orgs: string[]): string {
  const esc = (v: string) => v.replace(/[\\/+=]/g, (c) => `\\${c}`);
  return orgs.map((o) => `/O=${esc(o)}`).join('') + `/CN=${esc(cn)}`;
}

// Random positive 127-bit serial (RFC 5280: unique per CA, at most 20 octets).
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return `0x${b.toString('hex')}`;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error('openssl not found on PATH; install it (Debian: apt-get install openssl)', { cause: err });
    }
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

async function withScratchDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'diego-certs-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
