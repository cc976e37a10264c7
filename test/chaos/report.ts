// The end-of-run table (one row per scenario: runs, violations per invariant, recovery times) and the evidence
// of each violation.
import { INVARIANTS, type Invariant } from './monitor.ts';
import type { ScenarioResult } from './scenarios.ts';

const secs = (ms: number | undefined) => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)}s`);

function recoveries(r: ScenarioResult): string {
  const done = r.recoveriesMs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const missed = r.recoveriesMs.length - done.length;
  if (r.recoveriesMs.length === 0) return '-';
  const median = done.length > 0 ? done[Math.floor((done.length - 1) / 2)] : undefined;
  const max = done.at(-1);
  return `${secs(median)} / ${secs(max)}${missed > 0 ? ` (+${missed} never)` : ''}`;
}

export function table(results: ScenarioResult[]): string {
  const ids = Object.keys(INVARIANTS) as Invariant[];
  const header = ['scenario', 'runs', ...ids, 'recovery median / max', 'duration', 'status'];
  const rows = results.map((r) => {
    const count = (id: Invariant) => String(r.violations.filter((v) => v.invariant === id).length);
    const status = r.error ? 'ERROR' : r.violations.length > 0 ? 'FAIL' : 'pass';
    return [r.name, String(r.runs), ...ids.map(count), recoveries(r), `${Math.round(r.durationMs / 1000)}s`, status];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const legend = ids.map((id) => `${id} ${INVARIANTS[id]}`).join('; ');
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
    '',
    `Invariants: ${legend}.`,
  ].join('\n');
}

/** Every violation with its evidence (JSON), scenario by scenario; notes and errors too. */
export function details(results: ScenarioResult[], maxPerScenario = 50): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`## ${r.name}  (logs: ${r.logDir})`);
    for (const note of r.notes) out.push(`- ${note}`);
    const failed = Object.entries(r.failedTasks);
    if (failed.length > 0) out.push(`- failed tasks by reason: ${failed.map(([k, v]) => `"${k}": ${v}`).join(', ')}`);
    if (r.error) out.push(`- ERROR: ${r.error}`);
    for (const v of r.violations.slice(0, maxPerScenario)) {
      out.push(`- [${v.invariant}] +${Math.round(v.atMs / 1000)}s ${v.subject}: ${v.detail}`);
      if (v.evidence !== undefined) out.push(`  evidence: ${JSON.stringify(v.evidence)}`);
    }
    if (r.violations.length > maxPerScenario)
      out.push(`- ... ${r.violations.length - maxPerScenario} more in ${r.logDir}/result.json`);
    out.push('');
  }
  return out.join('\n');
}
