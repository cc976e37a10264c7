import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCA } from './certs.ts';
import { LeafIssuer } from './x509.ts';

const hour = 3_600_000;

describe('LeafIssuer', () => {
  it('issues a leaf that Node and openssl verify against the CA, with the asked subject, SANs and validity', async () => {
    const ca = await createCA({ commonName: 'instance identity CA' });
    const issuer = new LeafIssuer(ca);
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
    const leaf = await issuer.issue({
      commonName: '5f3c2a1e-instance',
      organizationalUnits: ['organization:org-1', 'space:space-1', 'app:app-1'],
      dnsNames: ['5f3c2a1e-instance'],
      ipAddresses: ['10.255.3.7'],
      notBefore,
      notAfter: new Date(notBefore.getTime() + 2 * hour),
    });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(cert.subject.split('\n')).toEqual([
      'OU=organization:org-1',
      'OU=space:space-1',
      'OU=app:app-1',
      'CN=5f3c2a1e-instance',
    ]);
    expect(cert.subjectAltName).toBe('DNS:5f3c2a1e-instance, IP Address:10.255.3.7');
    expect(cert.checkIP('10.255.3.7')).toBe('10.255.3.7');
    expect(new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime()).toBe(2 * hour);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.ca).toBe(false);
    expect(cert.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(leaf.keyPem)))).toBe(true);
    expect(leaf.chainPem).toBe(leaf.certPem + new X509Certificate(ca.certPem).toString());
    const dir = mkdtempSync(path.join(tmpdir(), 'x509-'));
    try {
      writeFileSync(path.join(dir, 'ca.crt'), ca.certPem);
      writeFileSync(path.join(dir, 'leaf.crt'), leaf.certPem);
      const out = execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', 'ca.crt', 'leaf.crt'], {
        cwd: dir,
      }).toString();
      expect(out.trim()).toBe('leaf.crt: OK');
      execFileSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', 'ca.crt', 'leaf.crt'], { cwd: dir });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('signs with an RSA CA, and writes IPv6 SANs and dates past 2049', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const dir = mkdtempSync(path.join(tmpdir(), 'x509-'));
    try {
      writeFileSync(path.join(dir, 'ca.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
      // prettier-ignore
      execFileSync('openssl', ['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=rsa-ca', '-days', '1',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-out', 'ca.crt'], { cwd: dir });
      const caPem = execFileSync('cat', ['ca.crt'], { cwd: dir }).toString();
      const issuer = new LeafIssuer({
        certPem: caPem,
        keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      });
      const leaf = await issuer.issue({
        commonName: 'g',
        ipAddresses: ['fd00::1:2'],
        notBefore: new Date('2049-12-31T23:00:00Z'),
        notAfter: new Date('2050-01-01T01:00:00Z'),
      });
      const cert = new X509Certificate(leaf.certPem);
      expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true);
      expect(cert.subjectAltName).toBe('IP Address:FD00:0:0:0:0:0:1:2');
      expect(new Date(cert.validTo).toISOString()).toBe('2050-01-01T01:00:00.000Z');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a CA whose key does not match, or a certificate that is not a CA', async () => {
    const a = await createCA();
    const b = await createCA();
    expect(() => new LeafIssuer({ certPem: a.certPem, keyPem: b.keyPem })).toThrow(/does not belong/);
  });
});
