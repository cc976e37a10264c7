// The `controller` role: the admission webhook server today; the converger, auctioneer and task
// controller join it as they land (issue #3).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { buildWebhookServer } from '../webhooks/server.ts';
import { untilSignal } from './signals.ts';

export interface ControllerOptions {
  log: Logger;
  kubeconfig?: string;
  webhookPort: number;
  webhookCertDir: string;
}

export async function runController(opts: ControllerOptions): Promise<number> {
  const read = (name: string) =>
    readFile(join(opts.webhookCertDir, name), 'utf8').catch(() => {
      throw new Error(
        `cannot read ${join(opts.webhookCertDir, name)}: the webhook needs a serving certificate (tls.crt, tls.key); mount one there or pass --webhook-cert-dir`,
      );
    });
  const webhook = buildWebhookServer({
    tls: { cert: await read('tls.crt'), key: await read('tls.key') },
    logger: opts.log,
  });
  await webhook.listen({ host: '0.0.0.0', port: opts.webhookPort });
  opts.log.info({ port: opts.webhookPort }, 'controller started');
  const sig = await untilSignal();
  opts.log.info({ signal: sig }, 'shutting down');
  await webhook.close();
  return 0;
}
