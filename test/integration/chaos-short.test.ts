// The short chaos suite (make test): the scenarios of test/chaos at reduced size, each on its own control plane,
// controllers and cell agents as separate processes, invariants checked on the host. `make chaos` runs the long
// versions of all of them (docs/chaos.md): agent kill -9 during tasks, a lost cell returning, kube-apiserver and
// etcd restarts mid-claim.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/log.ts';
import { killAllChildren, REPO } from '../chaos/procs.ts';
import { details, table } from '../chaos/report.ts';
import {
  active,
  agentKillTasks,
  apiserverRestart,
  etcdRestart,
  lostCellReturns,
  type Scenario,
  type ScenarioResult,
} from '../chaos/scenarios.ts';

const runDir = join(REPO, '.tmp', 'chaos', `short-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const abort = new AbortController();
const results: ScenarioResult[] = [];

const SCENARIOS: Scenario[] = [agentKillTasks, lostCellReturns, apiserverRestart, etcdRestart];

afterAll(async () => {
  abort.abort();
  await Promise.all([...active].map((c) => c.stop({ graceful: false })));
  await killAllChildren();
  if (results.length > 0) process.stdout.write(`\n${table(results)}\n`);
  // Logs are kept only when something was found.
  if (results.every((r) => !r.error && r.violations.length === 0)) rmSync(runDir, { recursive: true, force: true });
}, 120_000);

describe('chaos (short)', () => {
  for (const s of SCENARIOS) {
    it(
      `${s.name}: ${s.description}`,
      async () => {
        const r = await s.run({ runDir, log, size: 'short', scale: 1, signal: abort.signal });
        results.push(r);
        if (r.error || r.violations.length > 0) process.stdout.write(`\n${table([r])}\n${details([r])}\n`);
        expect(r.error).toBeUndefined();
        expect(r.violations).toEqual([]);
      },
      10 * 60_000,
    );
  }
});
