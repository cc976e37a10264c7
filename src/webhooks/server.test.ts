import { connect } from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createCA, issueCert } from '../lib/certs.ts';
import { createLogger } from '../lib/log.ts';
import { buildWebhookServer, closeWebhookServer, VALIDATE_PATH } from './server.ts';

describe('closeWebhookServer', () => {
  it('cuts a connection whose request is still arriving once the grace is over, instead of waiting for it', async () => {
    const ca = await createCA({ commonName: 'test-ca' });
    const pair = await issueCert(ca, { commonName: 'webhook', ipAddresses: ['127.0.0.1'], usage: 'server' });
    const app = buildWebhookServer({ tls: { cert: pair.certPem, key: pair.keyPem }, logger: createLogger('silent') });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    // As the API server's kept-alive connection with a review under way: headers sent, the body not yet.
    const sock = connect({ host: '127.0.0.1', port, ca: ca.certPem });
    await once(sock, 'secureConnect');
    sock.write(
      `POST ${VALIDATE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`,
    );
    const closed = once(sock, 'close');
    sock.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    // Without the cut, close() would wait for the client (Fastify's request timeout here: 30 s).
    await closeWebhookServer(app, 100);
    await closed;
    expect(sock.destroyed).toBe(true);
  }, 20_000);
});
