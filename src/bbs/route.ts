// One BBS route: its request and response messages and the handler between them.
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import type { DiegoClient } from '../lib/resources.ts';

export interface Ctx {
  client: DiegoClient;
  namespace: string;
  systemNamespace: string;
  /** For what a handler does not report to its caller (work left to the controllers). */
  log?: Logger;
}

export type Handler<Req extends DescMessage, Res extends DescMessage> = (
  req: MessageShape<Req>,
  ctx: Ctx,
) => Promise<MessageShape<Res>>;

export interface Route {
  request: DescMessage;
  response: DescMessage;
  handler: Handler<DescMessage, DescMessage>;
  /** Fields an error response carries besides the error (Diego's evacuation answers keep_container true). */
  failure?: Record<string, unknown>;
}

/** Types each handler against its own messages; the table itself is untyped. */
export function route<Req extends DescMessage, Res extends DescMessage>(
  request: Req,
  response: Res,
  handler: Handler<Req, Res>,
  failure?: Partial<MessageShape<Res>>,
): Route {
  return { request, response, handler, failure };
}
