// Headless Chromium driven over the DevTools protocol (Node's global WebSocket, no puppeteer): open a page, read its
// DOM while it changes, take a screenshot. Debian's `chromium` package (hack/install-deps.sh installs it).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { running } from './child.ts';

/** The Chromium binary on PATH, or undefined. */
export function findChromium(): string | undefined {
  for (const name of [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome']) {
    if (!name) continue;
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

/** How long the browser may take to answer (generous: a loaded machine). */
const ANSWER_MS = 60_000;

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

export class Chromium {
  private proc?: ChildProcess;
  private dir = '';
  private ws?: WebSocket;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  /** Starts the browser (as root it needs --no-sandbox) and attaches to its first page. */
  async start(binary: string, opts: { width?: number; height?: number } = {}): Promise<this> {
    this.dir = await mkdtemp(join(tmpdir(), 'diego-chromium-'));
    this.proc = spawn(
      binary,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--ignore-certificate-errors',
        '--remote-debugging-port=0',
        `--user-data-dir=${this.dir}`,
        `--window-size=${opts.width ?? 1400},${opts.height ?? 900}`,
        'about:blank',
      ],
      // Its own process group: stop() ends the browser and all its helpers, and nothing else.
      { stdio: 'ignore', detached: true },
    );
    const port = await this.devToolsPort(60_000);
    let target: { webSocketDebuggerUrl: string } | undefined;
    for (let i = 0; i < 100 && !target; i++) {
      const list = (await (
        await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(ANSWER_MS) })
      ).json()) as {
        type: string;
        webSocketDebuggerUrl: string;
      }[];
      target = list.find((t) => t.type === 'page');
      if (!target) await sleep(200);
    }
    if (!target) throw new Error('chromium has no page');
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`chromium did not open DevTools within ${ANSWER_MS} ms`)),
        ANSWER_MS,
      );
      ws.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error('cannot reach chromium over DevTools'));
      };
    });
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: Record<string, unknown>; error?: unknown };
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(`devtools: ${JSON.stringify(msg.error)}`));
      else p?.resolve(msg.result ?? {});
    };
    ws.onclose = () => {
      for (const p of this.pending.values()) p.reject(new Error('devtools connection closed'));
      this.pending.clear();
    };
    this.ws = ws;
    await this.send('Page.enable');
    await this.send('Runtime.enable');
    return this;
  }

  private async devToolsPort(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await readFile(join(this.dir, 'DevToolsActivePort'), 'utf8').catch(() => '');
      const port = Number(text.split('\n')[0]);
      if (port > 0) return port;
      if (this.proc && !running(this.proc)) {
        throw new Error(`chromium exited (${this.proc.signalCode ?? this.proc.exitCode})`);
      }
      if (Date.now() > deadline) throw new Error('chromium did not open its DevTools port');
      await sleep(200);
    }
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const ws = this.ws;
    if (!ws) return Promise.reject(new Error('chromium not started'));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      // A browser that stopped answering fails the call (stop() ends it), rather than leave the test waiting.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`devtools: ${method} unanswered ${ANSWER_MS} ms later`));
      }, ANSWER_MS);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async navigate(url: string): Promise<void> {
    await this.send('Page.navigate', { url });
  }

  /** Evaluates an expression in the page and returns its JSON value (a promise is awaited). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as {
      result?: { value?: T };
      exceptionDetails?: { text?: string; exception?: { description?: string } };
    };
    if (r.exceptionDetails) {
      throw new Error(r.exceptionDetails.exception?.description ?? r.exceptionDetails.text ?? 'evaluation failed');
    }
    return r.result?.value as T;
  }

  /** A PNG of the whole page. */
  async screenshot(): Promise<Buffer> {
    const { cssContentSize } = (await this.send('Page.getLayoutMetrics')) as {
      cssContentSize: { width: number; height: number };
    };
    const r = (await this.send('Page.captureScreenshot', {
      format: 'png',
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: Math.ceil(cssContentSize.width), height: Math.ceil(cssContentSize.height), scale: 1 },
    })) as { data: string };
    return Buffer.from(r.data, 'base64');
  }

  async stop(): Promise<void> {
    this.ws?.close();
    const proc = this.proc;
    if (proc?.pid !== undefined && proc.exitCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      try {
        process.kill(-proc.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await Promise.race([exited, sleep(5000)]);
      try {
        if (proc.exitCode === null) process.kill(-proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
