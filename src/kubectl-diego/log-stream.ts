// `kubectl diego logs`, the I/O: reads the log streams of the cells (their ops servers, src/cell-agent/logs/
// stream-server.ts) as newline-delimited JSON. The kubeconfig's bearer token is sent, over TLS only, for an agent
// that checks tokens (the chart's agents ask for `get desiredlrps/log` in the namespace).
import type { KubeConfig } from '@kubernetes/client-node';
import type { RequestOptions } from 'node:https';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { type LogLine, type LogSource, parseLogLine } from './logs.ts';

export interface StreamOptions {
  /** PEM file of the CA that signed the agents' ops certificates. */
  caFile?: string;
  /** Accept any certificate (the agents' default self-signed one). */
  insecure?: boolean;
  signal?: AbortSignal;
  /** Whether the kubeconfig's token may go to this cell (its URL vouched for); default: yes. */
  sendTokenTo?: (source: LogSource) => boolean;
}

export interface CellStreams {
  /** Reads one cell's stream, calling `onLine` for each envelope, until it ends (or the signal aborts). */
  read(source: LogSource, onLine: (line: LogLine) => void): Promise<void>;
  close(): Promise<void>;
}

/** The bearer token the kubeconfig's user presents (a token, or what its auth provider gives), if any. */
export async function bearerToken(kc: KubeConfig): Promise<string | undefined> {
  const opts: RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  const header = (opts.headers as Record<string, unknown> | undefined)?.Authorization;
  return typeof header === 'string' ? header.replace(/^Bearer\s+/i, '') : undefined;
}

export async function cellStreams(kc: KubeConfig, opts: StreamOptions): Promise<CellStreams> {
  const token = await bearerToken(kc);
  const ca = opts.caFile ? await readFile(opts.caFile, 'utf8') : undefined;
  const dispatcher = new Agent({
    connect: { rejectUnauthorized: !opts.insecure, ...(ca ? { ca } : {}) },
    // A follower's stream stays open for as long as it is read.
    bodyTimeout: 0,
    headersTimeout: 30_000,
  });
  return {
    async read(source, onLine) {
      const secure = source.url.startsWith('https:');
      const headers: Record<string, string> = { accept: 'application/x-ndjson' };
      // Never in clear: an agent without TLS listens on loopback and checks no token.
      if (token && secure && (opts.sendTokenTo?.(source) ?? true)) headers.authorization = `Bearer ${token}`;
      const res = await request(source.url, { dispatcher, headers, signal: opts.signal ?? null }).catch(
        (err: unknown) => {
          throw new Error(`cannot read the log stream of cell ${source.cellId} (${source.url}): ${describe(err)}`, {
            cause: err,
          });
        },
      );
      if (res.statusCode !== 200) {
        const body = await res.body.text().catch(() => '');
        let why = body.trim();
        try {
          why = (JSON.parse(body) as { error?: string }).error ?? why;
        } catch {
          // not JSON: the text itself
        }
        throw new Error(`cell ${source.cellId} refused its log stream: ${res.statusCode} ${why}`.trim());
      }
      let rest = '';
      try {
        for await (const chunk of res.body) {
          const text = rest + (chunk as Buffer).toString('utf8');
          const lines = text.split('\n');
          rest = lines.pop() ?? '';
          for (const l of lines) {
            const e = parseLogLine(l);
            if (e) onLine(e);
          }
        }
      } catch (err) {
        if (opts.signal?.aborted) return;
        throw new Error(`the log stream of cell ${source.cellId} broke off: ${describe(err)}`, { cause: err });
      }
      const last = parseLogLine(rest);
      if (last) onLine(last);
    },
    close: () => dispatcher.close(),
  };
}

/** A network error in one line: its message, else its code (an AggregateError of connection attempts has none). */
export function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: unknown; errors?: unknown[] };
  const cause = e?.cause as { message?: string; code?: string } | undefined;
  const parts = [e?.message, cause?.message, e?.code, cause?.code].filter((s): s is string => !!s);
  if (parts.length === 0 && Array.isArray(e?.errors) && e.errors.length > 0) return describe(e.errors[0]);
  // A code the message already says (connect ECONNREFUSED 127.0.0.1:1) is not said twice.
  const kept = parts.filter((p, i) => !parts.slice(0, i).some((q) => q.includes(p)));
  return kept.join(': ').replace(/\s*\n\s*/g, ' ') || String(err);
}
