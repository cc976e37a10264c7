import type { IncomingHttpHeaders } from 'node:http';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failure, loopback, readBody, sh, testCell, type Loopback, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';

let cell: TestCell;
let server: Loopback;
let received: { method?: string; url?: string; headers: IncomingHttpHeaders; body: Buffer }[];
let status: number;

beforeEach(async () => {
  cell = await testCell();
  received = [];
  status = 201;
  server = await loopback((req, res) => {
    void readBody(req).then((body) => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(status).end();
    });
  });
});

afterEach(async () => {
  await server.close();
  await cell.cleanup();
});

describe('upload step', () => {
  it('POSTs a file from the container with its checksums', async () => {
    const content = 'droplet bytes\n'.repeat(1000);
    await buildStep(
      {
        serial: {
          actions: [
            sh('mkdir -p out && printf "%s" "$CONTENT" > out/droplet.tgz', {
              env: [{ name: 'CONTENT', value: content }],
              suppressLogOutput: true,
            }),
            {
              upload: { from: '/out/droplet.tgz', to: server.url('/droplets/abc'), artifact: 'droplet', user: 'vcap' },
            },
          ],
        },
      },
      cell.ctx(),
    ).perform(new AbortController().signal);
    expect(received).toHaveLength(1);
    const [req] = received;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/droplets/abc');
    expect(req?.body.toString()).toBe(content);
    const bytes = Buffer.from(content);
    expect(req?.headers['content-type']).toBe('application/octet-stream');
    expect(req?.headers['content-length']).toBe(String(bytes.length));
    expect(req?.headers['content-md5']).toBe(createHash('md5').update(bytes).digest('base64'));
    expect(req?.headers['content-digest']).toBe(`sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`);
    expect(cell.lines()).toEqual(['Uploading droplet...', 'Uploaded droplet (13.7K)']);
  });

  it('tries 3 times, then fails with the status, without leaking the URL to the log', async () => {
    status = 500;
    await buildStep(sh('echo data > result.json', { suppressLogOutput: true }), cell.ctx()).perform(
      new AbortController().signal,
    );
    const err = await failure(() =>
      buildStep(
        { upload: { from: '/result.json', to: server.url('/secret-token'), artifact: 'result', user: 'vcap' } },
        cell.ctx(),
      ).perform(new AbortController().signal),
    );
    expect(err).toMatchObject({ code: 'upload', emittable: false, message: 'Upload failed: Status code 500' });
    expect(received).toHaveLength(3);
    expect(cell.lines('stderr')).toEqual(['Failed to upload payload for result']);
  });

  it("fails with Diego's message when the file is not in the container", async () => {
    const err = await failure(() =>
      buildStep(
        { upload: { from: '/nope', to: server.url('/x'), artifact: 'result', user: 'vcap' } },
        cell.ctx(),
      ).perform(new AbortController().signal),
    );
    expect(err).toMatchObject({ emittable: true, message: 'Failed to establish stream from container for result' });
    expect(received).toHaveLength(0);
  });
});
