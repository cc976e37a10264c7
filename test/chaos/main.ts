#!/usr/bin/env node
// `make chaos`: runs the chaos scenarios (long versions by default), prints a table per scenario — runs,
// violations per invariant, time to recover — and the evidence of every violation, and writes them to
// .tmp/chaos/<stamp>/report.md (with each scenario's logs and result.json beside it). Exit status 1 when any
// invariant was violated or a scenario could not run. See docs/chaos.md.
//
//   node test/chaos/main.ts [--scenarios a,b] [--short] [--scale 0.2] [--soak-minutes 10] [--list]
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../../src/lib/log.ts';
import { killAllChildren, REPO } from './procs.ts';
import { details, table } from './report.ts';
import { active, SCENARIOS, type ScenarioResult } from './scenarios.ts';

const { values } = parseArgs({
  options: {
    scenarios: { type: 'string', default: '' },
    short: { type: 'boolean', default: false },
    scale: { type: 'string', default: '1' },
    'soak-minutes': { type: 'string' },
    list: { type: 'boolean', default: false },
    keep: { type: 'string', default: '5' },
  },
});

async function main(): Promise<number> {
  if (values.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(22)} ${s.description}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) process.stderr.write('chaos: not root: the runc scenario will fail\n');
  const wanted = values.scenarios.split(',').filter(Boolean);
  const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.name === w));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; --list shows them`);
  const scenarios = wanted.length > 0 ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
  const root = join(REPO, '.tmp', 'chaos');
  pruneOld(root, Number(values.keep));
  const runDir = join(root, new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(runDir, { recursive: true });
  const log = createLogger(process.env.LOG_LEVEL ?? 'info');
  const abort = new AbortController();
  let interrupted = 0;
  const onSignal = () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    process.stderr.write('chaos: stopping (again to quit at once; cleanup then runs at exit only)\n');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: ScenarioResult[] = [];
  for (const s of scenarios) {
    if (abort.signal.aborted) break;
    process.stdout.write(`\n=== ${s.name}: ${s.description}\n`);
    const r = await s.run({
      runDir,
      log,
      size: values.short ? 'short' : 'long',
      scale: Number(values.scale),
      soakMinutes: values['soak-minutes'] ? Number(values['soak-minutes']) : undefined,
      signal: abort.signal,
    });
    results.push(r);
    process.stdout.write(`${table([r])}\n`);
  }
  await Promise.all([...active].map((c) => c.stop({ graceful: false })));
  await killAllChildren();
  const report = `# chaos run ${runDir}\n\n${table(results)}\n\n${details(results)}`;
  writeFileSync(join(runDir, 'report.md'), report);
  process.stdout.write(`\n${report}\nreport: ${join(runDir, 'report.md')}\n`);
  return results.some((r) => r.error || r.violations.length > 0) ? 1 : 0;
}

/** Keeps the newest `keep` run directories of .tmp/chaos. */
function pruneOld(root: string, keep: number): void {
  let dirs: string[];
  try {
    dirs = readdirSync(root).sort();
  } catch {
    return;
  }
  for (const d of dirs.slice(0, Math.max(0, dirs.length - keep + 1)))
    rmSync(join(root, d), { recursive: true, force: true });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void killAllChildren().finally(() => process.exit(2));
  },
);
