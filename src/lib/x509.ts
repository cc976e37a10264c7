// Issuing short-lived X.509 leaf certificates in-process (instance identity: one per container, rotated every
// few hours). Node can parse certificates and sign bytes but cannot build a certificate, and the openssl CLI
// (lib/certs.ts) only counts validity in days and costs two process spawns and key files on disk per leaf. So
// this is a small DER writer for exactly one shape of certificate: an ECDSA P-256 leaf, signed by an EC or RSA
// CA given as PEM, with subject CN + OUs, DNS/IP SANs, and server + client auth. Checked in tests with Node's
// X509Certificate and `openssl verify`.
import { createPrivateKey, generateKeyPair, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface SigningCA {
  certPem: string;
  keyPem: string;
}

export interface LeafRequest {
  commonName: string;
  organizationalUnits?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  notBefore: Date;
  notAfter: Date;
}

/** A leaf certificate (followed by the CA's, as Diego's instance.crt has it) and its PKCS#8 key. */
export interface IssuedCert {
  certPem: string;
  chainPem: string;
  keyPem: string;
}

/** A CA loaded once: its subject (copied byte for byte as the issuer) and signing key. */
export class LeafIssuer {
  readonly #key: KeyObject;
  readonly #issuer: Buffer;
  readonly #caPem: string;
  readonly #sigAlg: Buffer;
  readonly #hash: 'sha256' | null;
  readonly #caKeyId: Buffer | undefined;
  readonly ca: X509Certificate;

  constructor(ca: SigningCA) {
    this.ca = new X509Certificate(ca.certPem);
    this.#key = createPrivateKey(ca.keyPem);
    if (!this.ca.checkPrivateKey(this.#key)) throw new Error('the CA key does not belong to the CA certificate');
    if (!this.ca.ca) throw new Error('the CA certificate is not a CA (basicConstraints CA:TRUE is missing)');
    this.#issuer = subjectOf(this.ca.raw);
    this.#caPem = this.ca.toString();
    const type = this.#key.asymmetricKeyType;
    if (type === 'ec') {
      this.#sigAlg = seq(oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256
      this.#hash = 'sha256';
    } else if (type === 'rsa') {
      this.#sigAlg = seq(oid('1.2.840.113549.1.1.11'), NULL); // sha256WithRSAEncryption
      this.#hash = 'sha256';
    } else if (type === 'ed25519') {
      this.#sigAlg = seq(oid('1.3.101.112'));
      this.#hash = null;
    } else {
      throw new Error(`CA keys of type ${type ?? 'unknown'} are not supported (use EC, RSA or Ed25519)`);
    }
    this.#caKeyId = subjectKeyIdOf(this.ca.raw);
  }

  async issue(req: LeafRequest): Promise<IssuedCert> {
    const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const serial = randomBytes(16);
    serial[0] = serial[0]! & 0x7f; // positive
    if (serial[0] === 0) serial[0] = 1; // and minimally encoded
    const sans = [
      ...(req.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
      ...(req.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
    ];
    const extensions = [
      extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
      // digitalSignature, keyEncipherment, keyAgreement (Diego's key usage)
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x03, 0xa8]))),
      extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))),
      ...(sans.length > 0 ? [extension('2.5.29.17', false, seq(...sans))] : []),
      ...(this.#caKeyId ? [extension('2.5.29.35', false, seq(tlv(0x80, this.#caKeyId)))] : []),
    ];
    const tbs = seq(
      tlv(0xa0, integer(Buffer.from([2]))), // v3
      integer(serial),
      this.#sigAlg,
      this.#issuer,
      seq(time(req.notBefore), time(req.notAfter)),
      name(req.commonName, req.organizationalUnits ?? []),
      spki,
      tlv(0xa3, seq(...extensions)),
    );
    const signature = sign(this.#hash, tbs, this.#key);
    const der = seq(tbs, this.#sigAlg, bitString(signature));
    const certPem = pem('CERTIFICATE', der);
    return {
      certPem,
      chainPem: certPem + this.#caPem,
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }
}

// --- DER writing -------------------------------------------------------------------------------------------

const NULL = Buffer.from([0x05, 0x00]);

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]) => tlv(0x31, Buffer.concat(parts));
const bitString = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const octetString = (b: Buffer) => tlv(0x04, b);

function integer(b: Buffer): Buffer {
  return tlv(0x02, (b[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [a * 40 + b];
  for (const v of rest) {
    const chunk: number[] = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) chunk.unshift((x & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function name(cn: string, ous: string[]): Buffer {
  const rdn = (type: string, value: string) => set(seq(oid(type), tlv(0x0c, Buffer.from(value, 'utf8'))));
  return seq(...ous.map((ou) => rdn('2.5.4.11', ou)), rdn('2.5.4.3', cn));
}

function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z'; // YYYYMMDDHHMMSSZ
  const year = d.getUTCFullYear();
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), octetString(value));
}

function ipBytes(ip: string): Buffer {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const parts = (s: string) => (s === '' ? [] : s.split(':'));
  const h = parts(head);
  const t = parts(tail);
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  if (groups.length !== 8) throw new Error(`not an IP address: ${ip}`);
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

// --- DER reading (just enough to copy the CA's subject and key id) ------------------------------------------

interface Node {
  tag: number;
  at: number; // of the element (its tag)
  start: number; // of the content
  end: number; // of the content
  next: number; // after the element
}

function read(der: Buffer, at: number): Node {
  const tag = der[at] ?? 0;
  let len = der[at + 1] ?? 0;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] ?? 0);
    start += n;
  }
  return { tag, at, start, end: start + len, next: start + len };
}

function children(der: Buffer, parent: Node): Node[] {
  const out: Node[] = [];
  for (let at = parent.start; at < parent.end;) {
    const n = read(der, at);
    out.push(n);
    at = n.next;
  }
  return out;
}

function tbsFields(cert: Buffer): Node[] {
  const tbs = children(cert, read(cert, 0))[0]!;
  const fields = children(cert, tbs);
  return fields[0]?.tag === 0xa0 ? fields.slice(1) : fields; // drop the explicit version
}

/** The DER of a certificate's subject Name (serial, sigAlg, issuer, validity, subject, ...). */
function subjectOf(cert: Buffer): Buffer {
  const subject = tbsFields(cert)[4];
  if (!subject) throw new Error('malformed CA certificate');
  return cert.subarray(subject.at, subject.end);
}

/** The CA's subjectKeyIdentifier, if its certificate has one (for the leaf's authorityKeyIdentifier). */
function subjectKeyIdOf(cert: Buffer): Buffer | undefined {
  const ext = tbsFields(cert).find((n) => n.tag === 0xa3);
  if (!ext) return undefined;
  const list = children(cert, ext)[0];
  if (!list) return undefined;
  const skiOid = oid('2.5.29.14');
  for (const e of children(cert, list)) {
    const parts = children(cert, e);
    const id = parts[0];
    if (!id || !cert.subarray(id.at, id.end).equals(skiOid)) continue;
    const value = parts[parts.length - 1]!; // OCTET STRING holding an OCTET STRING
    const inner = read(cert, value.start);
    return cert.subarray(inner.start, inner.end);
  }
  return undefined;
}
