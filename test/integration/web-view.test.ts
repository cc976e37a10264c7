// The controller's live web view in a real browser (headless Chromium over the DevTools protocol) against the real
// API server: an app's instances appear on their cells, a crash turns up on the page without a reload, and the data
// routes check tokens as /metrics does. With WEB_VIEW_SCREENSHOT=docs/images/web-view.png it also writes the screenshot
// in docs/web-view.md.
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebView, type WebView } from '../../src/controllers/web-view.ts';
import type { WebViewModel } from '../../src/controllers/web-view-model.ts';
import type { IDesiredLRP } from '../../src/crds/models.ts';
import { kubernetesAuth } from '../../src/lib/ops-auth.ts';
import { Chromium, findChromium } from '../support/chromium.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('webview', { convergeIntervalMs: 2000 });
const { client } = env;
const chromiumBinary = findChromium();
const browser = new Chromium();
let view: WebView;
const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
const screenshotPath = process.env.WEB_VIEW_SCREENSHOT;

beforeAll(async () => {
  if (!chromiumBinary) throw new Error('no chromium on PATH: hack/install-deps.sh installs Debian’s chromium package');
  view = await startWebView({ source: env.manager, host: '127.0.0.1', port: 0 });
  await browser.start(chromiumBinary, { width: 1400, height: 900 });
}, 120_000);

afterAll(async () => {
  await browser.stop();
  await view?.close();
});

async function desire(name: string, instances: number, spec: Partial<IDesiredLRP['spec']> = {}): Promise<IDesiredLRP> {
  return client.create('DesiredLRP', {
    metadata: { name, namespace: env.ns },
    spec: {
      processGuid: `${name}-guid`,
      domain: 'cf-apps',
      instances,
      rootFs: 'preloaded:busybox',
      memoryMb: 128,
      diskMb: 64,
      action: { run: { path: '/bin/app', user: 'root' } },
      // A crash waits (CRASHED) instead of restarting at once, so the page can show it.
      crashRestartPolicy: { immediateRestarts: 0, minBackoffMs: 600_000 },
      ...spec,
    },
  });
}

/** What the page shows, read from its DOM. */
interface PageState {
  status: string;
  instances: { cell: string | null; zone: string | null; app: string; index: number; state: string }[];
  crashing: string[];
  pendingTasks: string[];
  decisions: number;
  runnersUp: string[];
}
const pageState = (): Promise<PageState> =>
  browser.evaluate<PageState>(`(() => ({
    status: document.getElementById('status').textContent,
    instances: [...document.querySelectorAll('li.instance[data-app]')].map((li) => {
      const cell = li.closest('.cell');
      return { cell: cell && cell.dataset.cellId, zone: cell && cell.dataset.zone, app: li.dataset.app,
               index: Number(li.dataset.index), state: li.dataset.state };
    }),
    crashing: [...document.querySelectorAll('tr.crashing-app')].map((tr) => tr.dataset.app),
    pendingTasks: [...document.querySelectorAll('tr.pending-task')].map((tr) => tr.dataset.task),
    decisions: document.querySelectorAll('tr.decision').length,
    runnersUp: [...document.querySelectorAll('tr.decision td.runners-up')].map((td) => td.textContent),
  }))()`);

describe('web view', () => {
  it('shows instances on their cells by zone, live, and a crash without a reload', async () => {
    const cells = await env.startCells(3, (i) => ({
      zone: i < 2 ? 'z1' : 'z2',
      memoryMb: 2048,
      containers: 20,
      autoStartTasks: false,
    }));
    const zoneOf = new Map(cells.map((c) => [c.o.cellId, c.o.zone]));
    await browser.navigate(view.url);
    await eventually(async () => expect((await pageState()).status).toBe('live'), 30_000);

    const web = await desire('web', 2);
    const shown = await eventually(
      async () => {
        const s = await pageState();
        const mine = s.instances.filter((i) => i.app === `${env.ns}/web`);
        expect(mine.map((i) => [i.index, i.state]).sort()).toEqual([
          [0, 'RUNNING'],
          [1, 'RUNNING'],
        ]);
        return mine;
      },
      45_000,
      250,
    );
    // On the cells the auction chose, in those cells' zones: one per zone (Diego balances an app over zones).
    const actual = await client.list('ActualLRP', {
      namespace: env.ns,
      labelSelector: `diego.dev/desired-lrp-uid=${web.metadata.uid}`,
    });
    for (const i of shown) {
      const a = actual.find((x) => x.spec.index === i.index)!;
      expect(i.cell).toBe(a.spec.cellId);
      expect(i.zone).toBe(zoneOf.get(a.spec.cellId!));
    }
    expect(new Set(shown.map((i) => i.zone))).toEqual(new Set(['z1', 'z2']));
    expect((await pageState()).decisions).toBeGreaterThanOrEqual(2);
    // The first instance had every cell competing: the next best cells and their scores are shown beside the winner.
    expect((await pageState()).runnersUp.some((t) => /^cell-\S+ \d+\.\d{3}(, |$)/.test(t))).toBe(true);

    // A second app and a task that waits on its cell, for the screenshot as much as for the test.
    await desire('worker', 3, { memoryMb: 256 });
    await client.create('Task', {
      metadata: { name: 'migrate', namespace: env.ns },
      spec: {
        taskGuid: `migrate-${env.ns}`,
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 32,
        action: { run: { path: '/bin/true', user: 'root' } },
      },
    });

    // Crash instance 1 of web the way its cell agent reports it; the page changes on its own.
    const crashed = actual.find((a) => a.spec.index === 1)!;
    const cell = cells.find((c) => c.o.cellId === crashed.spec.cellId)!;
    await cell.crash(crashed.metadata.name!, env.ns);
    await eventually(
      async () => {
        const s = await pageState();
        expect(s.instances).toContainEqual(
          // A crashed instance has left its cell (Diego unclaims it): it waits, off the cells, for its restart.
          expect.objectContaining({ app: `${env.ns}/web`, index: 1, state: 'CRASHED', cell: null }),
        );
        expect(s.crashing).toContain(`${env.ns}/web`);
        expect(s.instances.filter((i) => i.app === `${env.ns}/worker` && i.state === 'RUNNING')).toHaveLength(3);
        expect(s.pendingTasks).toContain(`${env.ns}/migrate`);
      },
      45_000,
      250,
    );

    const png = await browser.screenshot();
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    if (screenshotPath) {
      const path = join(repo, screenshotPath);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, png);
    }
  }, 180_000);

  it('serves the data only to a token allowed to list DesiredLRPs cluster-wide (the page asks for one), and bounds its watchers', async () => {
    const kc = env.kc;
    const core = kc.makeApiClient(CoreV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const role = `diego-web-view-test-${process.pid}`;
    const token = async (name: string) => {
      await core.createNamespacedServiceAccount({ namespace: env.ns, body: { metadata: { name } } });
      const r = await core.createNamespacedServiceAccountToken({
        namespace: env.ns,
        name,
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      });
      return r.status?.token ?? '';
    };
    const secured = await startWebView({
      source: env.manager,
      host: '127.0.0.1',
      port: 0,
      auth: kubernetesAuth(kc),
      maxClients: 1,
    });
    try {
      await rbac.createClusterRole({
        body: {
          metadata: { name: role },
          rules: [{ apiGroups: ['diego.dev'], resources: ['desiredlrps'], verbs: ['list'] }],
        },
      });
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: role },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: env.ns }],
        },
      });
      const [viewer, nobody] = [await token('viewer'), await token('nobody')];
      const get = (path: string, t?: string) =>
        fetch(`${secured.url}${path}`, t ? { headers: { authorization: `Bearer ${t}` } } : {});
      expect((await get('/')).status).toBe(200); // the page holds no data
      expect((await get('/api/view')).status).toBe(401);
      expect((await get('/api/view', 'not-a-token')).status).toBe(401);
      expect((await get('/api/view', nobody)).status).toBe(403);
      const model = await eventually(async () => {
        const r = await get('/api/view', viewer);
        expect(r.status).toBe(200);
        return (await r.json()) as WebViewModel;
      });
      expect(model.leading).toBe(true);

      // Server-sent events: a snapshot at once; a second watcher beyond the bound is refused; closing frees the slot.
      const events = await get('/api/events', viewer);
      expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      while (!text.includes('event: view')) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the event stream ended before its first snapshot; it sent: ${JSON.stringify(text)}`);
        text += value;
      }
      expect((await get('/api/events', viewer)).status).toBe(503);
      await reader.cancel();
      await eventually(() => expect(secured.clients).toBe(0), 10_000);

      // In the browser: without a token the page asks for one; with one in the URL fragment it goes live.
      await browser.navigate(`${secured.url}/`);
      await eventually(async () => {
        expect((await pageState()).status).toBe('not authorized');
        expect(await browser.evaluate<string>(`getComputedStyle(document.getElementById('auth')).display`)).toBe(
          'block',
        );
      }, 30_000);
      await browser.navigate(`${secured.url}/#token=${viewer}`);
      await eventually(async () => expect((await pageState()).status).toBe('live'), 30_000);
      expect(await browser.evaluate<string>('location.hash')).toBe(''); // the token left the address bar
    } finally {
      await secured.close();
      await rbac.deleteClusterRoleBinding({ name: role }).catch(() => undefined);
      await rbac.deleteClusterRole({ name: role }).catch(() => undefined);
    }
  }, 120_000);
});
