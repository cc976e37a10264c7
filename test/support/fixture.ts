// A test namespace, a Manager running the controllers, and simulated cells, for the integration suites.
// After each test its apps and tasks are removed while its cells still run (they release the containers),
// then the cells stop.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { Manager, type ManagerOptions } from '../../src/controllers/manager.ts';
import { createLogger } from '../../src/lib/log.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { eventually } from './eventually.ts';
import { createNamespace, deleteNamespace, testKubeConfig } from './kube.ts';
import { SimCell, type SimCellOptions } from './sim-cell.ts';

export function useDiego(prefix: string, managerOptions: Partial<ManagerOptions> = {}) {
  const kc = testKubeConfig();
  const client = new DiegoClient(kc);
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const systemNamespace = `diego-sys-${randomBytes(3).toString('hex')}`;
  const env = {
    kc,
    client,
    log,
    systemNamespace,
    ns: '',
    manager: undefined as unknown as Manager,
    cells: [] as SimCell[],
    /** Starts simulated cells with random ids (override per index with `opts`). */
    async startCells(n: number, opts: (i: number) => Partial<SimCellOptions> = () => ({})): Promise<SimCell[]> {
      const started = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          new SimCell(kc, {
            namespace: systemNamespace,
            cellId: `cell-${randomBytes(3).toString('hex')}-${i}`,
            ...opts(i),
          }).start(),
        ),
      );
      env.cells.push(...started);
      return started;
    },
  };

  beforeAll(async () => {
    env.ns = await createNamespace(kc, prefix);
    env.manager = new Manager({ kc, log, systemNamespace, ...managerOptions });
    await env.manager.start();
  });
  afterEach(async () => {
    const ns = env.ns;
    const [apps, tasks] = await Promise.all([
      client.list('DesiredLRP', { namespace: ns }),
      client.list('Task', { namespace: ns }),
    ]);
    await Promise.all([
      ...apps.map((d) => client.delete('DesiredLRP', { namespace: ns, name: d.metadata.name! })),
      ...tasks.map((t) => client.delete('Task', { namespace: ns, name: t.metadata.name! })),
    ]);
    await eventually(async () => expect(await client.list('ActualLRP', { namespace: ns })).toHaveLength(0), 30_000);
    await Promise.all(env.cells.map((c) => c.stop()));
    env.cells.length = 0;
  }, 60_000);
  afterAll(async () => {
    await env.manager.stop();
    await deleteNamespace(kc, env.ns);
    await deleteNamespace(kc, systemNamespace);
  });
  return env;
}
