// The cell agent's container proxy flags (--container-proxy, --container-proxy-require-client-certs,
// --container-proxy-trusted-ca) as executorOptions turns them into the rep's executor options.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SocatProxyRunner } from '../cell-agent/executor/proxy.ts';
import { createCA, writeCertFiles } from '../lib/certs.ts';
import { createLogger } from '../lib/log.ts';
import { executorOptions, type CellAgentOptions } from './cell-agent.ts';

let dir: string;
let ca: { certPath: string; keyPath: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cell-agent-proxy-'));
  ca = await writeCertFiles(dir, 'identity-ca', await createCA({ commonName: 'identity CA' }));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const options = (extra: Partial<CellAgentOptions>): Omit<CellAgentOptions, 'kubeconfig'> => ({
  log: createLogger('silent'),
  cellId: 'c1',
  memoryMb: 1024,
  diskMb: 1024,
  containers: 10,
  stacks: [],
  backend: 'process',
  stateDir: join(dir, 'state'),
  ...extra,
});

describe('cell agent container proxy flags', () => {
  it('is off by default (Diego: enable_container_proxy false)', async () => {
    expect((await executorOptions(options({})))?.proxy).toBeUndefined();
  });

  it('--container-proxy gives the rep a socat proxy runner; it needs the identity CA', async () => {
    const identity = { instanceIdentityCaCert: ca.certPath, instanceIdentityCaKey: ca.keyPath };
    const executor = await executorOptions(options({ ...identity, containerProxy: true }));
    expect(executor?.proxy).toBeInstanceOf(SocatProxyRunner);
    (executor?.proxy as SocatProxyRunner).close();

    await expect(executorOptions(options({ containerProxy: true }))).rejects.toThrow(
      '--container-proxy needs the instance identity CA',
    );
    await expect(
      executorOptions(options({ ...identity, containerProxy: true, containerProxyRequireClientCerts: true })),
    ).rejects.toThrow(/trusted CA file \(--container-proxy-trusted-ca\)/);
    await expect(
      executorOptions(options({ ...identity, containerProxy: true, containerProxyTrustedCa: join(dir, 'nope.pem') })),
    ).rejects.toThrow(/ENOENT/);
    await expect(executorOptions(options({ containerProxyRequireClientCerts: true }))).rejects.toThrow(
      'need --container-proxy',
    );
    const mutual = await executorOptions(
      options({
        ...identity,
        containerProxy: true,
        containerProxyRequireClientCerts: true,
        containerProxyTrustedCa: ca.certPath,
      }),
    );
    (mutual?.proxy as SocatProxyRunner).close();
  });
});
