// `diego-operator bbs`: Diego's BBS API for existing Diego clients (Cloud Controller, the Go client), served
// over mutual TLS like the real BBS, or over plain HTTP for local development only.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { buildBbsApp } from '../bbs/app.ts';
import { loadKubeConfig } from '../lib/kube.ts';
import { DiegoClient } from '../lib/resources.ts';
import { untilSignal } from './signals.ts';

export interface BbsOptions {
  log: Logger;
  kubeconfig?: string;
  namespace: string;
  systemNamespace: string;
  listen: string;
  insecureHttp: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
}

export async function runBbs(opts: BbsOptions): Promise<number> {
  const tls = opts.tlsCert && opts.tlsKey && opts.tlsClientCa;
  if (!tls && !opts.insecureHttp) {
    process.stderr.write('diego-operator bbs: give --tls-cert, --tls-key and --tls-client-ca, or --insecure-http\n');
    return 2;
  }
  if (!tls) {
    opts.log.warn(
      '!!! BBS is serving PLAIN HTTP without client authentication: anyone who can reach it can run code on your cells. Use only for local development. !!!',
    );
  }
  const i = opts.listen.lastIndexOf(':');
  const host = opts.listen.slice(0, i) || '0.0.0.0';
  const port = Number(opts.listen.slice(i + 1));
  const app = buildBbsApp({
    client: new DiegoClient(loadKubeConfig(opts.kubeconfig)),
    namespace: opts.namespace,
    systemNamespace: opts.systemNamespace,
    logger: opts.log,
    https: tls
      ? {
          cert: readFileSync(opts.tlsCert!),
          key: readFileSync(opts.tlsKey!),
          ca: readFileSync(opts.tlsClientCa!),
        }
      : undefined,
  });
  await app.listen({ host, port });
  const sig = await untilSignal();
  opts.log.info({ signal: sig }, 'shutting down');
  await app.close();
  return 0;
}
