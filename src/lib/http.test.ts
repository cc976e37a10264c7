// httpFetch must survive servers that end the connection while a response body is paused under backpressure:
// Node 24's built-in fetch throws an uncatchable AssertionError there (nodejs/undici#5360), ending the process.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpFetch } from './http.ts';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A raw TCP server answering every request with `head` + `body`, then FIN. */
async function rawServer(head: string, body: Buffer, after: (s: Socket) => void = (s) => s.end()): Promise<string> {
  server = createServer((sock) => {
    sock.once('data', () => {
      sock.write(head);
      sock.write(body);
      after(sock);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}/`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Small enough that the parser consumes it all in one read and then pauses: the FIN then finds it paused.
const BODY = Buffer.alloc(64 * 1024, 0x61);

describe('httpFetch', () => {
  it('reads a body whose server closed the connection while nobody was reading (HTTP/1.1, Connection: close)', async () => {
    const url = await rawServer(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n`, BODY);
    const res = await httpFetch(url);
    await sleep(300); // the parser pauses under backpressure and the FIN arrives meanwhile
    expect(Buffer.from(await res.arrayBuffer()).length).toBe(BODY.length);
  });

  it('reads an HTTP/1.0 body delimited by the end of the connection', async () => {
    const url = await rawServer('HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n', BODY);
    const res = await httpFetch(url);
    await sleep(300);
    expect(Buffer.from(await res.arrayBuffer()).length).toBe(BODY.length);
  });

  it('fails (does not crash) when the server closes before the announced length', async () => {
    const url = await rawServer(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length * 4}\r\n\r\n`, BODY);
    const res = await httpFetch(url);
    await sleep(300);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });

  it('fails (does not crash) when the server resets the connection mid-body', async () => {
    const url = await rawServer(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length * 4}\r\n\r\n`, BODY, (s) =>
      setTimeout(() => s.resetAndDestroy(), 50),
    );
    const res = await httpFetch(url);
    await sleep(300);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });
});
