// The admission webhook server (HTTPS; the apiserver only calls webhooks over TLS).
import Fastify from 'fastify';
import type { Logger } from 'pino';
import { review, type AdmissionReview } from './admission.ts';

export const VALIDATE_PATH = '/validate-diego-dev-v1alpha1';

export interface WebhookServerOptions {
  tls: { cert: string; key: string };
  logger: Logger;
}

export function buildWebhookServer(opts: WebhookServerOptions) {
  const log = opts.logger.child({ component: 'webhook' });
  const app = Fastify({
    https: { cert: opts.tls.cert, key: opts.tls.key },
    logger: false, // one line per denial below; no per-request access log
    bodyLimit: 8 * 1024 * 1024,
  });
  app.get('/healthz', (_req, reply) => reply.send('ok'));
  app.post(VALIDATE_PATH, (req, reply) => {
    const result = review(req.body as AdmissionReview);
    if (!result.response?.allowed) {
      log.info({ uid: result.response?.uid, message: result.response?.status?.message }, 'admission denied');
    }
    return reply.send(result);
  });
  return app;
}
