// The BBS started before its system namespace exists waits for the cluster and creates it (when allowed),
// instead of failing its first domain write.
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { untilServed } from '../../src/cmd/bbs.ts';
import { createLogger } from '../../src/lib/log.ts';
import { deleteNamespace, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
const ns = `diego-bbs-late-${process.pid}`;
afterAll(() => deleteNamespace(kc, ns));

describe('BBS start-up', () => {
  it('waits for the CRDs and creates a missing system namespace', async () => {
    await untilServed(kc, ns, createLogger('silent'), 100);
    const got = await kc.makeApiClient(CoreV1Api).readNamespace({ name: ns });
    expect(got.metadata?.name).toBe(ns);
  });
});
