// The image credentials endpoint, served by the controller (the one component that may `get secrets`) on its TLS
// server: a cell agent about to pull a docker:// image asks for the credentials of that one piece of work with the
// ServiceAccount token bound to its Pod. The token is checked with a TokenReview (lib/ops-auth.ts); the pure
// decision (image-credentials.ts) says whether that cell may have them. Bounded: a deadline on the API calls, a cap on
// requests in flight, no body, no cache of Secrets (the TokenReview answer is cached briefly, as for the ops
// endpoints). One log line per refusal; counted in ImageCredentialsRequests{outcome}.
import type { KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { registry } from '../lib/metrics.ts';
import type { OpsAuth, OpsUser } from '../lib/ops-auth.ts';
import { DiegoClient, isNotFound } from '../lib/resources.ts';
import { CREDENTIALS_ROUTE, credentialsOf, getSecret, type SecretLike } from '../lib/image-credentials.ts';
import {
  cellOf,
  decideActualLRP,
  decideTask,
  parseRequest,
  type CredentialsRequest,
  type Refusal,
} from './image-credentials.ts';

export interface CredentialsEndpointOptions {
  /** The controller's cluster access: get ActualLRPs, DesiredLRPs, Tasks and Secrets. */
  kc: KubeConfig;
  /** Authenticates the bearer token (a TokenReview; with the audience the cell agents' tokens are issued for). */
  auth: Pick<OpsAuth, 'authenticate'>;
  /** User names of the cell agents' ServiceAccount (system:serviceaccount:<namespace>:<name>). */
  cellAgentUsers: string[];
  logger: Logger;
  /** Deadline of the API calls behind one answer (default 10 s): past it, 503. */
  timeoutMs?: number;
  /** Requests answered at once (default 32); more get 429. */
  maxInFlight?: number;
}

type Outcome = 'granted' | 'refused' | 'not_found' | 'unauthenticated' | 'bad_request' | 'throttled' | 'unavailable';

const requests = new Counter({
  name: 'ImageCredentialsRequests',
  help: "Cell agents' requests for image credentials, by outcome (granted, refused, not_found, unauthenticated, bad_request, throttled, unavailable).",
  labelNames: ['outcome'],
  registers: [registry],
});

class Timeout extends Error {}

/**
 * Registers the endpoint (GET CREDENTIALS_ROUTE `?secret=<name>`) on `app`: the controller's webhook server, whose
 * TLS certificate and Service the cell agents trust and reach.
 */
export function registerCredentialsRoutes(app: FastifyInstance, o: CredentialsEndpointOptions): void {
  const log = o.logger.child({ component: 'image-credentials' });
  const client = new DiegoClient(o.kc);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const maxInFlight = o.maxInFlight ?? 32;
  let inFlight = 0;

  const answer = (reply: FastifyReply, outcome: Outcome, code: number, body: Record<string, unknown>) => {
    requests.inc({ outcome });
    return reply.code(code).header('cache-control', 'no-store').send(body);
  };

  app.get(CREDENTIALS_ROUTE, { bodyLimit: 1024 }, async (req, reply) => {
    if (inFlight >= maxInFlight) {
      return answer(reply.header('retry-after', '1'), 'throttled', 429, {
        error: `too many image credentials requests at once (${maxInFlight}); try again`,
      });
    }
    inFlight++;
    try {
      const params = req.params as Record<string, string>;
      const parsed = parseRequest({ ...params, secret: (req.query as Record<string, unknown>).secret });
      if (!parsed.ok) return answer(reply, 'bad_request', 400, { error: parsed.message });
      const r = parsed.request;
      const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      if (!token) {
        return answer(reply.header('www-authenticate', 'Bearer'), 'unauthenticated', 401, {
          error: "a bearer token is required: the cell agent's ServiceAccount token bound to its Pod",
        });
      }
      const deadline = deadlineAfter(timeoutMs);
      let user: OpsUser | undefined;
      try {
        user = await deadline(o.auth.authenticate(token));
      } catch (err) {
        return unavailable(reply, err, r);
      }
      if (!user) {
        log.warn({ ...r }, 'image credentials refused: the token was not accepted');
        return answer(reply.header('www-authenticate', 'Bearer'), 'unauthenticated', 401, {
          error: 'the token was not accepted (expired, revoked, or not issued for this endpoint)',
        });
      }
      const cell = cellOf(user, o.cellAgentUsers);
      if (!cell.allowed) return refused(reply, cell, user, r);
      let verdict;
      try {
        verdict = await deadline(decideFor(client, cell.cellId, r));
      } catch (err) {
        return unavailable(reply, err, r);
      }
      if (!verdict.allowed) return refused(reply, verdict, user, r, cell.cellId);
      let secret: SecretLike | undefined;
      try {
        secret = await deadline(getSecret(o.kc, r.namespace, r.secret).catch(orUndefined<SecretLike>));
      } catch (err) {
        return unavailable(reply, err, r);
      }
      if (!secret) {
        const missing: Refusal = {
          allowed: false,
          status: 404,
          rule: 'credentials.secret',
          message: `[credentials.secret] the Secret ${r.secret} named by ${r.kind} ${r.namespace}/${r.name} does not exist in namespace ${r.namespace}`,
        };
        return refused(reply, missing, user, r, cell.cellId);
      }
      const held = credentialsOf(secret);
      if (!held.ok) {
        const bad: Refusal = {
          allowed: false,
          status: 403,
          rule: 'credentials.secret-type',
          message: `[credentials.secret-type] ${held.reason}`,
        };
        return refused(reply, bad, user, r, cell.cellId);
      }
      log.debug({ ...r, cellId: cell.cellId }, 'image credentials given');
      return answer(reply, 'granted', 200, {
        username: held.credentials.username,
        password: held.credentials.password,
      });
    } finally {
      inFlight--;
    }
  });

  function refused(reply: FastifyReply, why: Refusal, user: OpsUser, r: CredentialsRequest, cellId?: string) {
    // One line per refusal: a compromised node asking for other cells' credentials shows here.
    log.warn({ user: user.username, cellId, ...r, rule: why.rule }, `image credentials refused: ${why.message}`);
    return answer(reply, why.status === 404 ? 'not_found' : 'refused', why.status, {
      error: why.message,
      rule: why.rule,
    });
  }

  function unavailable(reply: FastifyReply, err: unknown, r: CredentialsRequest) {
    log.warn({ err, ...r }, 'image credentials: the API server did not answer');
    return answer(reply, 'unavailable', 503, {
      error:
        err instanceof Timeout
          ? `the API server did not answer within ${timeoutMs} ms`
          : 'cannot check the request now: the API server does not answer',
    });
  }
}

/** What the API server holds now about the work, and the verdict on it. */
async function decideFor(client: DiegoClient, cellId: string, r: CredentialsRequest) {
  if (r.kind === 'tasks') {
    const task = await client.get('Task', r.namespace, r.name).catch(orUndefined<ITask>);
    return decideTask(cellId, r, task);
  }
  const actual = await client.get('ActualLRP', r.namespace, r.name).catch(orUndefined<IActualLRP>);
  const owner = actual?.metadata.ownerReferences?.find((x) => x.kind === 'DesiredLRP');
  const desired = owner
    ? await client.get('DesiredLRP', r.namespace, owner.name).catch(orUndefined<IDesiredLRP>)
    : undefined;
  return decideActualLRP(cellId, r, actual, desired);
}

function orUndefined<T>(err: unknown): T | undefined {
  if (isNotFound(err)) return undefined;
  throw err;
}

/** Races each promise against one shared deadline. */
function deadlineAfter(ms: number) {
  const at = Date.now() + ms;
  return <T>(p: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout()), Math.max(0, at - Date.now()));
    });
    return Promise.race([p, expired]).finally(() => clearTimeout(timer));
  };
}
