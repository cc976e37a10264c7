// One BBS call against an in-process facade (fastify inject): encode the request, POST it, decode the
// response, which is always HTTP 200 + protobuf, errors included. Also the facade a test file runs on its
// useDiego environment, and the DesiredLRP and Task requests the BBS tests desire most.
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect } from 'vitest';
import { buildBbsApp, PROTOBUF, type BbsAppOptions } from '../../src/bbs/app.ts';
import * as m from '../../src/bbs/models.ts';
import { eventually } from './eventually.ts';
import type { useDiego } from './fixture.ts';

export function bbsCaller(app: () => FastifyInstance, opts: { expectNoError?: boolean } = {}) {
  return async function bbs<Req extends DescMessage, Res extends DescMessage>(
    path: string,
    reqSchema: Req,
    req: MessageInitShape<Req>,
    resSchema: Res,
  ): Promise<MessageShape<Res>> {
    const r = await app().inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': PROTOBUF },
      payload: Buffer.from(toBinary(reqSchema, create(reqSchema, req))),
    });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe(PROTOBUF);
    const res = fromBinary(resSchema, r.rawPayload);
    if (opts.expectNoError) expect((res as { error?: m.Error }).error).toBeUndefined();
    return res;
  };
}

/**
 * A BBS facade on a useDiego environment's namespaces, built before the file's tests and closed after them:
 * `app()` is the facade (once beforeAll ran), `bbs` calls it (see bbsCaller), and `placedLRP` desires an LRP
 * (`<prefix>-<random>`, desiredLRPInit with `more`) through it and waits until the auctioneer placed its
 * instances on `cellId` (the only cell yet); it resolves the process guid.
 */
export function useBbsApp(
  env: ReturnType<typeof useDiego>,
  opts: Partial<BbsAppOptions> & { expectNoError?: boolean } = {},
) {
  const { expectNoError, ...appOptions } = opts;
  let built: FastifyInstance | undefined;
  beforeAll(() => {
    built = buildBbsApp({
      client: env.client,
      namespace: env.ns,
      systemNamespace: env.systemNamespace,
      logger: env.log,
      ...appOptions,
    });
  });
  afterAll(() => built?.close());
  const app = (): FastifyInstance => {
    if (!built) throw new Error('the BBS facade is built in beforeAll: use it inside tests and hooks');
    return built;
  };
  const bbs = bbsCaller(app, { expectNoError });
  const placedLRP = async (
    prefix: string,
    cellId: string,
    instances: number,
    more: Partial<MessageInitShape<typeof m.DesiredLRPSchema>> = {},
  ) => {
    const guid = `${prefix}-${randomBytes(4).toString('hex')}`;
    const desired = await bbs(
      '/v1/desired_lrp/desire.r2',
      m.DesireLRPRequestSchema,
      { desiredLrp: desiredLRPInit(guid, instances, more) },
      m.DesiredLRPLifecycleResponseSchema,
    );
    expect(desired.error).toBeUndefined();
    await eventually(async () => {
      const crs = await env.client.list('ActualLRP', { namespace: env.ns, fieldSelector: `spec.processGuid=${guid}` });
      expect(crs.filter((a) => a.spec.cellId === cellId)).toHaveLength(instances);
    }, 30_000);
    return guid;
  };
  return { app, bbs, placedLRP };
}

/** A DesiredLRP of a busybox app ('/bin/app' as vcap, 32 MB memory and disk) with `instances` instances. */
export function desiredLRPInit(
  processGuid: string,
  instances: number,
  more: Partial<MessageInitShape<typeof m.DesiredLRPSchema>> = {},
): MessageInitShape<typeof m.DesiredLRPSchema> {
  const init: MessageInitShape<typeof m.DesiredLRPSchema> = {
    processGuid,
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances,
    memoryMb: 32,
    diskMb: 32,
    action: { runAction: { path: '/bin/app', user: 'vcap' } },
    metricTags: { source_id: { static: 'app-guid' } },
  };
  return { ...init, ...more } as MessageInitShape<typeof m.DesiredLRPSchema>;
}

/** A Task request: '/bin/true' as root in busybox with 16 MB memory. */
export function taskRequestInit(taskGuid: string): MessageInitShape<typeof m.DesireTaskRequestSchema> {
  return {
    taskGuid,
    domain: 'cf-tasks',
    taskDefinition: {
      rootFs: 'preloaded:busybox',
      memoryMb: 16,
      action: { runAction: { path: '/bin/true', user: 'root' } },
    },
  };
}
