// A TLS proxy in front of the test API server that can lose answers: a request `lose` picks is carried out by the API
// server, and then the caller's connection is cut before the answer reaches it — what a client sees when the API
// server restarts or the network drops mid-call (ECONNRESET / socket hang up) although its write landed; a request it
// `refuse`s is cut at once, never carried out (the API server still down when the client reads back).
// Everything else (watches included) passes through. Loopback only.
import { request as httpsRequest, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { createCA, issueCert } from '../../src/lib/certs.ts';

export interface ProxiedRequest {
  method: string;
  path: string;
  body: string;
}

export interface FaultProxy {
  /** A kubeconfig whose API server is the proxy (the upstream's credentials are added by the proxy). */
  kc: KubeConfig;
  /** The requests whose answers were lost, in order. */
  lost: ProxiedRequest[];
  /** The requests cut before they reached the API server, in order. */
  refused: ProxiedRequest[];
  close(): Promise<void>;
}

export async function startFaultProxy(
  upstream: KubeConfig,
  fault: (r: ProxiedRequest) => 'lose-answer' | 'refuse' | undefined,
): Promise<FaultProxy> {
  const ca = await createCA({ commonName: 'fault-proxy-ca', days: 1 });
  const leaf = await issueCert(ca, { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server', days: 1 });
  const cluster = upstream.getCurrentCluster();
  if (!cluster) throw new Error('the upstream kubeconfig has no current cluster');
  const lost: ProxiedRequest[] = [];
  const refused: ProxiedRequest[] = [];

  const server: Server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const seen: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', body: body.toString('utf8') };
      const what = fault(seen);
      if (what === 'refuse') {
        refused.push(seen);
        req.socket.destroy();
        return;
      }
      const losing = what === 'lose-answer';
      const target = new URL(seen.path, cluster.server);
      const headers = { ...req.headers, host: target.host };
      delete headers.authorization;
      const opts: Parameters<typeof httpsRequest>[1] = { method: seen.method, headers };
      void upstream.applyToHTTPSOptions(opts).then(() => {
        const up = httpsRequest(target, opts, (answer: IncomingMessage) => {
          if (losing) {
            // Carried out upstream; the caller never hears of it.
            answer.resume();
            answer.on('end', () => {
              lost.push(seen);
              req.socket.destroy();
            });
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        up.on('error', () => req.socket.destroy());
        res.on('close', () => up.destroy());
        up.end(body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fault-proxy', server: `https://127.0.0.1:${port}`, caData: b64(ca.certPem) }],
    users: [{ name: 'proxied' }],
    contexts: [{ name: 'fault-proxy', cluster: 'fault-proxy', user: 'proxied' }],
    currentContext: 'fault-proxy',
  });
  return {
    kc,
    lost,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
