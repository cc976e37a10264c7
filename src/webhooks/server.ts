// The admission webhook server (HTTPS; the apiserver only calls webhooks over TLS).
import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import { DiegoClient } from '../lib/resources.ts';
import { deny, review, type AdmissionReview } from './admission.ts';
import { namespaceCaps } from './limits.ts';
import { processGuidTaken } from './unique.ts';
import { describeErrors } from './validate.ts';

export const VALIDATE_PATH = '/validate-diego-dev-v1alpha1';

export interface WebhookServerOptions {
  tls: { cert: string; key: string };
  logger: Logger;
  /** The cluster, for checks that need it (a process guid unique cluster-wide); without it only the spec is checked. */
  kc?: KubeConfig;
}

export function buildWebhookServer(opts: WebhookServerOptions) {
  const log = opts.logger.child({ component: 'webhook' });
  const app = Fastify({
    https: { cert: opts.tls.cert, key: opts.tls.key },
    logger: false, // one line per denial below; no per-request access log
    bodyLimit: 8 * 1024 * 1024,
    // Object names are up to 253 characters (the credentials route has them in its path).
    routerOptions: { maxParamLength: 512 },
    // A client that sends slowly does not hold a connection for ever.
    requestTimeout: 30_000,
  });
  app.get('/healthz', (_req, reply) => reply.send('ok'));
  const client = opts.kc ? new DiegoClient(opts.kc) : undefined;
  app.post(VALIDATE_PATH, async (req, reply) => {
    const body = req.body as AdmissionReview;
    let result = review(body);
    const request = body.request;
    if (result.response?.allowed && client && opts.kc && request) {
      const taken = await processGuidTaken(client, request);
      if (taken) result = deny(request, 409, 'AlreadyExists', taken, 'spec.processGuid');
      const object = request.object as {
        spec?: { memoryMb?: number; diskMb?: number };
        metadata?: { namespace?: string };
      };
      const namespace = object.metadata?.namespace;
      if (!taken && namespace && (request.operation === 'CREATE' || request.operation === 'UPDATE')) {
        const capped = await namespaceCaps(opts.kc, namespace, object.spec ?? {});
        if (capped.length > 0)
          result = deny(
            request,
            422,
            'Invalid',
            `${request.kind.kind} is over its namespace's limits: ${describeErrors(capped)}`,
            capped[0]!.field,
          );
      }
    }
    if (!result.response?.allowed) {
      log.info({ uid: result.response?.uid, message: result.response?.status?.message }, 'admission denied');
    }
    return reply.send(result);
  });
  return app;
}

/**
 * Stops the server: no new connections; requests under way get `graceMs` to finish, then every connection still
 * open is cut. The API server keeps its connections to a webhook alive, and one that was busy when the close began
 * would otherwise hold the close for Fastify's keep-alive timeout (72 s), past a pod's grace period.
 */
export async function closeWebhookServer(app: ReturnType<typeof buildWebhookServer>, graceMs = 5_000): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}
