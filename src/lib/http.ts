// Outbound HTTP for everything the operator fetches or posts on a user's behalf (downloads, uploads' peers,
// task callbacks). It is the `undici` package, not Node's built-in fetch: the undici bundled with Node 24
// (7.x) throws an uncatchable AssertionError from a socket 'end' handler when a server closes the connection
// while a response body is paused under backpressure (nodejs/undici#5360, fixed in 8.x by #5474). An HTTP/1.0
// file server does that on every download, and the exception ended the whole process.
import { Agent, fetch as undiciFetch, type RequestInit, type Response } from 'undici';

/** Bounded per origin, so one slow file server cannot take every socket of the process. */
const agent = new Agent({ connections: 32, headersTimeout: 60_000, bodyTimeout: 300_000 });

export type HttpResponse = Response;
export type HttpRequestInit = Omit<RequestInit, 'dispatcher'>;

/** fetch() through the process's shared, bounded undici agent. */
export function httpFetch(url: string | URL, init: HttpRequestInit = {}): Promise<Response> {
  return undiciFetch(url, { ...init, dispatcher: agent });
}
