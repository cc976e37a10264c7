import { X509Certificate } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCA, type CertKeyPair } from '../../lib/certs.ts';
import { eventually } from '../testing.ts';
import { CREDENTIALS_PATH, InstanceIdentity, rotationDelayMs } from './identity.ts';

let dir: string;
let ca: CertKeyPair;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'identity-'));
  ca ??= await createCA({ commonName: 'cell identity CA' });
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const certIn = async (d: string) => new X509Certificate(await readFile(path.join(d, 'instance.crt')));

describe('instance identity', () => {
  it("issues the container's certificate into a directory mounted read-only at /etc/cf-instance-credentials", async () => {
    const identity = new InstanceIdentity({ ca, dir: path.join(dir, 'creds') });
    const { bindMount, env } = await identity.prepare('guid-1');
    expect(bindMount).toEqual({ srcPath: identity.dirOf('guid-1'), dstPath: CREDENTIALS_PATH, mode: 'ro' });
    expect(env).toEqual([
      { name: 'CF_INSTANCE_CERT', value: '/etc/cf-instance-credentials/instance.crt' },
      { name: 'CF_INSTANCE_KEY', value: '/etc/cf-instance-credentials/instance.key' },
    ]);
    await identity.start('guid-1', { guid: 'guid-1', ip: '10.1.2.3', organizationalUnits: ['app:a1', 'space:s1'] });
    const cert = await certIn(identity.dirOf('guid-1'));
    expect(cert.subject).toBe('OU=app:a1\nOU=space:s1\nCN=guid-1');
    expect(cert.subjectAltName).toBe('DNS:guid-1, IP Address:10.1.2.3');
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(statSync(path.join(dir, 'creds')).mode & 0o777).toBe(0o700); // host users cannot read keys
    await identity.remove('guid-1');
    expect(existsSync(identity.dirOf('guid-1'))).toBe(false);
  });

  it('re-issues the certificate before it expires', async () => {
    const identity = new InstanceIdentity({ ca, dir, validityMs: 1_600 }); // rotates every 1.4 s
    await identity.prepare('g');
    await identity.start('g', { guid: 'g' });
    const first = (await certIn(identity.dirOf('g'))).serialNumber;
    await eventually(() => {
      void certIn(identity.dirOf('g')).then((c) => (latest = c.serialNumber));
      return latest !== undefined && latest !== first;
    }, 10_000);
    await identity.remove('g');
  });

  it("rotates at validity − 30 min for long certificates and at 7/8 of short ones (Diego's rule)", () => {
    expect(rotationDelayMs(24 * 3_600_000)).toBe(24 * 3_600_000 - 30 * 60_000);
    expect(rotationDelayMs(3_600_000)).toBe(3_150_000);
  });
});

let latest: string | undefined;
