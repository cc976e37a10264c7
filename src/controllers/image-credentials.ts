// Who may read which image credentials, as pure functions (the HTTP shell is image-credentials-endpoint.ts). A cell agent asks for the
// credentials of one piece of work it is about to start; every cell agent shares one ServiceAccount, so the cell is
// the node its bound token names, and the answer is yes only while that work is placed on that cell:
//
//   credentials.cell-agent   the caller is the cell agents' ServiceAccount
//   credentials.bound-token  its token names a node (a legacy or unbound token names none)
//   credentials.placed       the work's spec.cellId is that node (for an ActualLRP, its DesiredLRP's credentials)
//   credentials.ordinary     an ActualLRP is its DesiredLRP's ORDINARY instance (copies start no container, and a
//                            cell agent may create EVACUATING copies of anything: admission cannot check them)
//   credentials.running      a Task still to start or running (a completed one pulls nothing)
//   credentials.named        the work names that Secret in spec.imageCredentialsSecret
//   credentials.docker       the work pulls an image (a docker:// rootFs)
//   credentials.secret-type  the Secret is a kubernetes.io/basic-auth Secret with both keys (credentialsOf)
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { NODE_NAME_EXTRA, WORK_KINDS, type WorkKind, type WorkRef } from '../lib/image-credentials.ts';
import { actualLRPName, copyPresenceOfName } from '../lifecycle/names.ts';

/** What a cell agent asks for: the credentials `secret` of the work `kind`/`name` in `namespace`. */
export interface CredentialsRequest extends WorkRef {
  secret: string;
}

/** The caller as the TokenReview authenticated it. */
export interface Caller {
  username: string;
  extra?: Record<string, string[]>;
}

export interface Refusal {
  allowed: false;
  /** 403 refused; 404 the work or the Secret does not exist. */
  status: 403 | 404;
  rule: string;
  message: string;
}
export type Verdict<T> = ({ allowed: true } & T) | Refusal;

const refuse = (rule: string, message: string, status: 403 | 404 = 403): Refusal => ({
  allowed: false,
  status,
  rule,
  message: `[${rule}] ${message}`,
});

/** The cell a caller speaks for: the node of its bound token, if it is a cell agent at all. */
export function cellOf(caller: Caller, cellAgentUsers: readonly string[]): Verdict<{ cellId: string }> {
  if (!cellAgentUsers.includes(caller.username)) {
    return refuse(
      'credentials.cell-agent',
      `${caller.username} is not the cell agents' ServiceAccount (${cellAgentUsers.join(', ') || 'none configured'}): only the cell a piece of work is placed on gets its image credentials`,
    );
  }
  const node = caller.extra?.[NODE_NAME_EXTRA]?.[0];
  if (!node) {
    return refuse(
      'credentials.bound-token',
      `the token of ${caller.username} names no node (a legacy Secret token or an unbound token): a cell agent must present the ServiceAccount token bound to its Pod, whose node is its cell`,
    );
  }
  return { allowed: true, cellId: node };
}

const what = (r: CredentialsRequest) => `${r.kind} ${r.namespace}/${r.name}`;

function placedOn(r: CredentialsRequest, placement: string | undefined, cellId: string): Refusal | undefined {
  if (!placement) return refuse('credentials.placed', `${what(r)} is not placed on any cell`);
  if (placement !== cellId)
    return refuse('credentials.placed', `${what(r)} is placed on cell ${placement}, not ${cellId}`);
  return undefined;
}

function namesSecret(
  r: CredentialsRequest,
  spec: { imageCredentialsSecret?: string; rootFs: string },
  owner: string,
): Refusal | undefined {
  if (!spec.imageCredentialsSecret) {
    return refuse('credentials.named', `${owner} names no image credentials Secret (spec.imageCredentialsSecret)`);
  }
  if (spec.imageCredentialsSecret !== r.secret) {
    return refuse(
      'credentials.named',
      `${owner} names the Secret ${spec.imageCredentialsSecret} in spec.imageCredentialsSecret, not ${r.secret}`,
    );
  }
  if (!/^docker:\/\//i.test(spec.rootFs)) {
    return refuse('credentials.docker', `${owner} pulls no image (its rootFs is not docker://)`);
  }
  return undefined;
}

/**
 * An ActualLRP: placed on the caller's cell, its DesiredLRP's ORDINARY instance, and that DesiredLRP names the
 * Secret. `actual` and `desired` are what the API server holds now (undefined: not found).
 */
export function decideActualLRP(
  cellId: string,
  r: CredentialsRequest,
  actual: IActualLRP | undefined,
  desired: IDesiredLRP | undefined,
): Verdict<{ secret: { namespace: string; name: string } }> {
  if (!actual) return refuse('credentials.placed', `${what(r)} does not exist`, 404);
  const placement = placedOn(r, actual.spec.cellId, cellId);
  if (placement) return placement;
  const owner = actual.metadata.ownerReferences?.find((o) => o.kind === 'DesiredLRP');
  const presence = actual.status?.presence ?? 'ORDINARY';
  if (copyPresenceOfName(r.name) !== undefined || presence !== 'ORDINARY' || !owner) {
    return refuse(
      'credentials.ordinary',
      `${what(r)} is not the ORDINARY instance of a DesiredLRP (a copy starts no container)`,
    );
  }
  if (!desired || desired.metadata.uid !== owner.uid || actualLRPName(owner.name, actual.spec.index) !== r.name) {
    return refuse(
      'credentials.ordinary',
      `${what(r)} is not an instance of the DesiredLRP ${r.namespace}/${owner.name} as it is now`,
      desired ? 403 : 404,
    );
  }
  const named = namesSecret(r, desired.spec, `the DesiredLRP ${r.namespace}/${owner.name}`);
  if (named) return named;
  return { allowed: true, secret: { namespace: r.namespace, name: r.secret } };
}

/** A Task: placed on the caller's cell, not completed, and it names the Secret. */
export function decideTask(
  cellId: string,
  r: CredentialsRequest,
  task: ITask | undefined,
): Verdict<{ secret: { namespace: string; name: string } }> {
  if (!task) return refuse('credentials.placed', `${what(r)} does not exist`, 404);
  const placement = placedOn(r, task.spec.cellId, cellId);
  if (placement) return placement;
  const state = task.status?.state ?? 'Pending';
  if (state !== 'Pending' && state !== 'Running') {
    return refuse('credentials.running', `${what(r)} is ${state}: it starts no container`);
  }
  const named = namesSecret(r, task.spec, `the Task ${r.namespace}/${r.name}`);
  if (named) return named;
  return { allowed: true, secret: { namespace: r.namespace, name: r.secret } };
}

/** A request as it arrives (path and query), or why it is malformed. */
export function parseRequest(params: {
  namespace?: string;
  kind?: string;
  name?: string;
  secret?: unknown;
}): { ok: true; request: CredentialsRequest } | { ok: false; message: string } {
  const { namespace, kind, name, secret } = params;
  if (!namespace || !name) return { ok: false, message: 'namespace and name are required' };
  if (!(WORK_KINDS as readonly string[]).includes(kind ?? '')) {
    return { ok: false, message: `kind must be one of ${WORK_KINDS.join(', ')} (got ${kind ?? ''})` };
  }
  if (typeof secret !== 'string' || secret === '') {
    return { ok: false, message: 'the query parameter secret (the Secret the work names) is required' };
  }
  return { ok: true, request: { namespace, kind: kind as WorkKind, name, secret } };
}
