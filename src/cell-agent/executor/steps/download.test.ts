import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, failure, loopback, testCell, type Loopback, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { DownloadCache } from '../download-cache.ts';
import { Semaphore } from '../step.ts';

let cell: TestCell;
let server: Loopback;
let served: Record<string, Buffer>;
let requests: string[];
let tgz: Buffer;

beforeEach(async () => {
  cell = await testCell();
  const src = path.join(cell.dir, 'droplet');
  await mkdir(path.join(src, 'bin'), { recursive: true });
  await writeFile(path.join(src, 'index.html'), '<h1>hello</h1>');
  await writeFile(path.join(src, 'bin', 'start'), '#!/bin/sh\necho started\n', { mode: 0o755 });
  tgz = execFileSync('tar', ['-c', '-z', '-f', '-', '-C', src, '.']);
  execFileSync('zip', ['-q', '-r', path.join(cell.dir, 'droplet.zip'), '.'], { cwd: src });
  served = {
    '/droplet.tgz': tgz,
    '/droplet.tar': execFileSync('tar', ['-c', '-f', '-', '-C', src, '.']),
    '/droplet.zip': await readFile(path.join(cell.dir, 'droplet.zip')),
    '/not-an-archive': Buffer.from('just text\n'.repeat(100)),
  };
  requests = [];
  server = await loopback((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/hang') return; // never answers
    const body = served[req.url ?? ''];
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(body);
  });
});

afterEach(async () => {
  await server.close();
  await cell.cleanup();
});

const containerFile = (p: string) => path.join(cell.dir, 'containers', cell.container.handle, p);
const sha = (alg: string, b: Buffer) => createHash(alg).update(b).digest('hex');

describe('download step', () => {
  it('downloads a tgz, checks its checksum and extracts it into the container', async () => {
    await buildStep(
      {
        download: {
          from: server.url('/droplet.tgz'),
          to: '/home/vcap',
          artifact: 'droplet',
          user: 'vcap',
          checksumAlgorithm: 'sha256',
          checksumValue: sha('sha256', tgz),
        },
      },
      cell.ctx(),
    ).perform(new AbortController().signal);
    expect(await readFile(containerFile('home/vcap/index.html'), 'utf8')).toBe('<h1>hello</h1>');
    expect(execFileSync(containerFile('home/vcap/bin/start')).toString()).toBe('started\n');
    expect(cell.lines()).toEqual(['Downloading droplet...', `Downloaded droplet (${tgz.length}B)`]);
  });

  it.each(['md5', 'sha1'] as const)('accepts a matching %s checksum (quoted, upper case)', async (alg) => {
    await buildStep(
      {
        download: {
          from: server.url('/droplet.tgz'),
          to: '/app',
          user: 'vcap',
          checksumAlgorithm: alg,
          checksumValue: `"${sha(alg, tgz).toUpperCase()}"`,
        },
      },
      cell.ctx(),
    ).perform(new AbortController().signal);
    expect(await readFile(containerFile('app/index.html'), 'utf8')).toBe('<h1>hello</h1>');
    expect(cell.logs).toEqual([]); // no artifact: no progress lines
  });

  it('fails on a checksum mismatch without retrying, and extracts nothing', async () => {
    const wrong = '0'.repeat(64);
    const err = await failure(() =>
      buildStep(
        {
          download: {
            from: server.url('/droplet.tgz'),
            to: '/app',
            artifact: 'droplet',
            user: 'vcap',
            checksumAlgorithm: 'sha256',
            checksumValue: wrong,
          },
        },
        cell.ctx(),
      ).perform(new AbortController().signal),
    );
    expect(err).toMatchObject({ code: 'download', emittable: true, message: 'Downloading droplet failed' });
    expect((err.cause as Error).message).toBe(
      `Checksum failed: 'checksum mismatch', expected '${wrong}', got '"${sha('sha256', tgz)}"'`,
    );
    expect(requests).toEqual(['/droplet.tgz']);
    expect(cell.lines('stderr')).toEqual(['Downloading droplet failed']);
    await expect(readFile(containerFile('app/index.html'))).rejects.toThrow();
  });

  it('rejects a checksum of the wrong length', async () => {
    const err = await failure(() =>
      buildStep(
        {
          download: {
            from: server.url('/droplet.tgz'),
            to: '/app',
            user: 'vcap',
            checksumAlgorithm: 'md5',
            checksumValue: 'abc',
          },
        },
        cell.ctx(),
      ).perform(new AbortController().signal),
    );
    expect((err.cause as Error).message).toBe(
      "Checksum failed: 'checksum missing or invalid', expected 'a valid checksum', got 'abc'",
    );
  });

  it("extracts a relative destination into the user's home, as Garden does", async () => {
    await buildStep({ download: { from: server.url('/droplet.tgz'), to: '.', user: 'vcap' } }, cell.ctx()).perform(
      new AbortController().signal,
    );
    await buildStep({ download: { from: server.url('/droplet.tgz'), to: 'app', user: 'root' } }, cell.ctx()).perform(
      new AbortController().signal,
    );
    expect(await readFile(containerFile('home/vcap/index.html'), 'utf8')).toBe('<h1>hello</h1>');
    expect(await readFile(containerFile('root/app/index.html'), 'utf8')).toBe('<h1>hello</h1>');
  });

  it('extracts plain tar and zip archives', async () => {
    for (const [file, to] of [
      ['/droplet.tar', '/from-tar'],
      ['/droplet.zip', '/from-zip'],
    ] as const) {
      await buildStep({ download: { from: server.url(file), to, user: 'vcap' } }, cell.ctx()).perform(
        new AbortController().signal,
      );
      expect(await readFile(containerFile(`${to}/index.html`), 'utf8')).toBe('<h1>hello</h1>');
    }
    expect(execFileSync(containerFile('from-zip/bin/start')).toString()).toBe('started\n');
  });

  it('retries a failed request 4 times, then fails with "Downloading failed"', async () => {
    const err = await failure(() =>
      buildStep({ download: { from: server.url('/missing.tgz'), to: '/app', user: 'vcap' } }, cell.ctx()).perform(
        new AbortController().signal,
      ),
    );
    expect(err).toMatchObject({ code: 'download', message: 'Downloading failed' });
    expect((err.cause as Error).message).toBe('Download failed: Status code 404');
    expect(requests).toHaveLength(4);
    expect(cell.lines('stderr')).toEqual(['Downloading failed']); // failures are logged even without artifact
  });

  it('fails on something that is not an archive', async () => {
    const err = await failure(() =>
      buildStep({ download: { from: server.url('/not-an-archive'), to: '/app', user: 'vcap' } }, cell.ctx()).perform(
        new AbortController().signal,
      ),
    );
    expect((err.cause as Error).message).toBe('unknown archive format');
  });

  it('is cancelled promptly while waiting for the server, and while waiting for a download slot', async () => {
    const controller = new AbortController();
    const limiter = new Semaphore(1);
    const hanging = buildStep(
      { download: { from: server.url('/hang'), to: '/app', user: 'vcap' } },
      cell.ctx({ downloadLimiter: limiter }),
    ).perform(controller.signal);
    hanging.catch(() => undefined);
    await eventually(() => requests.includes('/hang')); // it holds the one slot
    const queued = buildStep(
      { download: { from: server.url('/droplet.tgz'), to: '/app', user: 'vcap' } },
      cell.ctx({ downloadLimiter: limiter }),
    ).perform(controller.signal);
    const outcomes = Promise.allSettled([hanging, queued]);
    await new Promise((r) => setTimeout(r, 50)); // the second waits for the slot
    controller.abort();
    const [first, second] = await outcomes;
    expect(first).toMatchObject({ status: 'rejected', reason: { code: 'cancelled' } });
    expect(second).toMatchObject({ status: 'rejected', reason: { code: 'cancelled' } });
    expect(requests).toEqual(['/hang']);
  });

  it('goes through the cell cache when the action has a cacheKey: the second download is a revalidation', async () => {
    served['/cached.tgz'] = tgz;
    const etagServer = await loopback((req, res) => {
      requests.push(`${req.headers['if-none-match'] ? 'revalidate' : 'get'} ${req.url}`);
      if (req.headers['if-none-match'] === '"d1"') return void res.writeHead(304).end();
      res.writeHead(200, { ETag: '"d1"' }).end(tgz);
    });
    try {
      const cache = new DownloadCache({ dir: path.join(cell.dir, 'cache') });
      await cache.open();
      const action = {
        download: {
          from: etagServer.url('/droplet.tgz'),
          to: '/app',
          artifact: 'droplet',
          user: 'vcap',
          cacheKey: 'droplet-1',
        },
      };
      await buildStep(action, cell.ctx({ cache })).perform(new AbortController().signal);
      await buildStep({ download: { ...action.download, to: '/again' } }, cell.ctx({ cache })).perform(
        new AbortController().signal,
      );
      expect(requests).toEqual(['get /droplet.tgz', 'revalidate /droplet.tgz']);
      expect(await readFile(containerFile('again/index.html'), 'utf8')).toBe('<h1>hello</h1>');
      expect(cell.lines()).toEqual([
        'Downloading droplet...',
        `Downloaded droplet (${tgz.length}B)`,
        'Downloading droplet...',
        'Downloaded droplet', // from the cache: no size, as Diego
      ]);
    } finally {
      await etagServer.close();
    }
  });

  describe('servers that end the connection', () => {
    let raw: TcpServer;
    const rawUrl = () => {
      const a = raw.address();
      return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/droplet.tgz`;
    };
    const serve = (answer: (sock: import('node:net').Socket) => void) =>
      new Promise<void>((resolve) => {
        raw = createTcpServer((sock) => sock.once('data', () => answer(sock)));
        raw.listen(0, '127.0.0.1', resolve);
      });
    afterEach(() => new Promise<void>((resolve) => raw.close(() => resolve())));

    it('downloads from an HTTP/1.0 server that delimits the body by closing the connection', async () => {
      await serve((sock) => {
        sock.write('HTTP/1.0 200 OK\r\nContent-Type: application/gzip\r\n\r\n');
        sock.end(tgz);
      });
      await buildStep({ download: { from: rawUrl(), to: '/app', user: 'vcap' } }, cell.ctx()).perform(
        new AbortController().signal,
      );
      expect(await readFile(containerFile('app/index.html'), 'utf8')).toBe('<h1>hello</h1>');
    });

    it('fails the step (the agent lives on) when the server closes mid-body', async () => {
      await serve((sock) => {
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${tgz.length * 10}\r\n\r\n`);
        sock.end(tgz);
      });
      const err = await failure(() =>
        buildStep({ download: { from: rawUrl(), to: '/app', artifact: 'droplet', user: 'vcap' } }, cell.ctx()).perform(
          new AbortController().signal,
        ),
      );
      expect(err).toMatchObject({ code: 'download', message: 'Downloading droplet failed' });
    });
  });
});
