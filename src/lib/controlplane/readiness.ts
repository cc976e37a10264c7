// Polling health endpoints until a component is ready, failing fast (with its log) if
// the component exits instead.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { logTail, type ManagedProcess } from './process.ts';

export interface TlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  /** Skip server certificate verification (components with self-signed serving certs). */
  insecure?: boolean;
}

/** One GET; resolves with the status and (truncated) body, rejects on connection errors. */
export function httpGet(
  url: string,
  tls: TlsOptions = {},
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const opts = { method: 'GET', timeout: timeoutMs };
    const req =
      u.protocol === 'https:'
        ? httpsRequest(u, {
            ...opts,
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            rejectUnauthorized: !tls.insecure,
            agent: false,
          })
        : httpRequest(u, { ...opts, agent: false });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs}ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.end();
  });
}

/**
 * Polls `url` every `intervalMs` until it answers 200. Throws a descriptive error (with
 * the tail of the process log) if `proc` exits or `timeoutMs` passes.
 */
export async function waitForHttp200(
  proc: ManagedProcess,
  url: string,
  opts: { tls?: TlsOptions; timeoutMs: number; intervalMs?: number; hint: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'no response yet';
  while (Date.now() < deadline) {
    if (proc.exitInfo) {
      const how = proc.exitInfo.signal ? `signal ${proc.exitInfo.signal}` : `code ${proc.exitInfo.code}`;
      throw new Error(await failure(proc, `${proc.name} exited with ${how} before becoming ready`, opts.hint));
    }
    try {
      const res = await httpGet(url, opts.tls, Math.min(5000, Math.max(500, deadline - Date.now())));
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${res.body.trim().slice(0, 800)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
  throw new Error(
    await failure(proc, `${proc.name} not ready after ${opts.timeoutMs / 1000}s (GET ${url}: ${last})`, opts.hint),
  );
}

/** "what went wrong" + log tail + "how to fix". */
export async function failure(proc: ManagedProcess, what: string, hint: string): Promise<string> {
  return (
    `${what}.\n` +
    `--- last 40 lines of ${proc.logPath} ---\n${await logTail(proc, 40)}\n--- end of log ---\n` +
    `${hint} Set DIEGO_KEEP_CONTROL_PLANE=1 to keep the logs and data directory after a failure.`
  );
}
