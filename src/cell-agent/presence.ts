// A cell's registration: its Cell object and its presence Lease (Diego's Locket presence), as written by the
// rep (and by the simulated cells of the tests, so both speak the same protocol).
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { LABEL_CELL_PRESENCE } from '../lifecycle/names.ts';
import type { CellSpec } from '../crds/cell.ts';
import { GROUP, VERSION } from '../crds/kinds.ts';
import { applyAt, rawRequest } from '../lib/kube.ts';
import { leasePath, microTime } from '../lib/lease.ts';
import { isNotFound, resourcePath } from '../lib/resources.ts';

/** Cell and Lease object name for a cell id (cell ids may hold '_' and capitals; object names may not). */
export const cellObjectName = (cellId: string): string => cellId.toLowerCase().replace(/[^a-z0-9.-]/g, '-');

export async function registerCell(kc: KubeConfig, spec: CellSpec): Promise<void> {
  await applyAt(kc, resourcePath('Cell', undefined, cellObjectName(spec.cellId)), {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Cell',
    metadata: { name: cellObjectName(spec.cellId) },
    spec,
  });
}

/**
 * Renews the cell's presence Lease (holder = cell id; labelled so the controller tells cells from other Leases): a
 * merge patch of its spec, the cheapest write that renews it (no server-side apply merge of the whole object), and a
 * server-side apply that creates it with its label when it does not exist (the first renewal, or after a release).
 */
export async function renewPresence(
  kc: KubeConfig,
  namespace: string,
  cellId: string,
  ttlSeconds: number,
): Promise<void> {
  const name = cellObjectName(cellId);
  const spec = { holderIdentity: cellId, leaseDurationSeconds: ttlSeconds, renewTime: microTime(new Date()) };
  try {
    await rawRequest(kc, {
      method: 'PATCH',
      path: leasePath(namespace, name),
      contentType: 'application/merge-patch+json',
      body: { metadata: { labels: { [LABEL_CELL_PRESENCE]: 'true' } }, spec },
    });
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await applyAt(kc, leasePath(namespace, name), {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, labels: { [LABEL_CELL_PRESENCE]: 'true' } },
    spec,
  });
}

/** Gives the presence up at once, so no more work is placed on the cell. */
export async function releasePresence(kc: KubeConfig, namespace: string, cellId: string): Promise<void> {
  await rawRequest(kc, { method: 'DELETE', path: leasePath(namespace, cellObjectName(cellId)) }).catch(
    (err: unknown) => {
      if (!isNotFound(err)) throw err;
    },
  );
}

/**
 * Runs `register` (the Cell and its presence Lease) until it succeeds, waiting for what is missing instead of
 * failing: the Diego CRDs, the system namespace (created when this identity may), or the API server itself. Says
 * once what it waits for, then retries every `retryMs`. An agent started before `helm install` finished, or before
 * the operator installed the CRDs, waits instead of exiting on its first 404.
 */
export async function untilRegistrable(
  kc: KubeConfig,
  namespace: string,
  register: () => Promise<void>,
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void },
  opts: { retryMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  let said = '';
  const say = (what: string, err?: unknown) => {
    if (what !== said) log.warn({ err }, `waiting for ${what}`);
    said = what;
  };
  for (;;) {
    if (opts.signal?.aborted) throw new Error('stopped while waiting to register the cell');
    try {
      await register();
      if (said) log.info({}, 'the cluster is ready: the cell is registered');
      return;
    } catch (err) {
      if (!isNotFound(err)) say('the API server to answer', err);
      else {
        const ns = await rawRequest(kc, { method: 'GET', path: `/api/v1/namespaces/${namespace}` }).then(
          () => 'exists',
          (e: unknown) => (isNotFound(e) ? 'missing' : 'unknown'),
        );
        if (ns === 'missing') {
          const created = await rawRequest(kc, {
            method: 'POST',
            path: '/api/v1/namespaces',
            body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
          }).then(
            () => true,
            (e: unknown) => {
              say(`the system namespace ${namespace} (this cell agent may not create it)`, e);
              return false;
            },
          );
          if (created) {
            log.info({ namespace }, 'created the system namespace');
            continue;
          }
        } else say('the Diego CRDs (diego-operator install-crds, or the Helm chart)', err);
      }
      await sleep(opts.retryMs ?? 2000, undefined, { signal: opts.signal }).catch(() => undefined); // ended by a stop
    }
  }
}

/**
 * The ops server's URL as others reach it (the Cell's spec.opsUrl): the listening URL, with the cell's address in
 * place of a wildcard host (an agent listening on 0.0.0.0 is reached at its node's address).
 */
export function advertisedOpsUrl(listening: string, host: string, externalIp: string | undefined): string {
  const url = new URL(listening);
  if (externalIp && (host === '0.0.0.0' || host === '::' || host === '')) {
    url.hostname = externalIp.includes(':') ? `[${externalIp}]` : externalIp;
  }
  return url.toString().replace(/\/$/, '');
}
