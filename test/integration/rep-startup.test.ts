// An agent started before its system namespace exists (the Helm chart or the operator not there yet) waits and
// creates it when allowed, instead of exiting on the first 404 of its presence Lease.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import { deleteNamespace, testKubeConfig } from '../support/kube.ts';
import { createLogger } from '../../src/lib/log.ts';

const kc = testKubeConfig();
const dir = mkdtempSync(path.join(tmpdir(), 'rep-startup-'));
const ns = `diego-late-${process.pid}`;
let rep: Rep | undefined;
afterAll(async () => {
  await rep?.stop();
  await deleteNamespace(kc, ns);
  rmSync(dir, { recursive: true, force: true });
});

describe('cell agent start-up', () => {
  it('registers into a system namespace that did not exist yet', async () => {
    const cellId = `late-${process.pid}`;
    rep = new Rep({
      kc,
      cellId,
      capacity: { memoryMb: 256, diskMb: 256, containers: 2 },
      stacks: ['busybox'],
      backend: new ProcessBackend({ baseDir: path.join(dir, 'containers') }),
      log: createLogger('warn'),
      systemNamespace: ns,
    });
    await rep.start();
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: cellObjectName(cellId), namespace: ns });
    expect(lease.spec?.holderIdentity).toBe(cellId);
  }, 60_000);
});
