// One BBS call against an in-process facade (fastify inject): encode the request, POST it, decode the
// response, which is always HTTP 200 + protobuf, errors included.
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from '@bufbuild/protobuf';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { PROTOBUF } from '../../src/bbs/app.ts';

export function bbsCaller(app: () => FastifyInstance) {
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
    return fromBinary(resSchema, r.rawPayload);
  };
}
