// BBS's separate health listener (cmd/bbs health_addr): plain HTTP, no client certificate, answering 200 so
// that a load balancer or a kubelet probe can check the process without holding a BBS client identity.
// Like Diego's it answers every path; GET /ping is the documented one.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HealthServer {
  /** host:port it listens on (the port resolved when 0 was asked for). */
  address: string;
  close(): Promise<void>;
}

export async function startHealthServer(address: string): Promise<HealthServer> {
  const { host, port } = splitHostPort(address);
  const server: Server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
    res.end('ok\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    address: `${host}:${bound.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** "host:port" → parts; an empty host means every interface, as in Diego's listen_address. */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`"${address}" is not host:port (for example 127.0.0.1:8890)`);
  return { host: address.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port };
}
