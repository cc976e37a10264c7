// Prints vitest's JSON reports (one or more, summed) as one plain line, "N passed, N failed, N skipped", for CI logs.
import { existsSync, readFileSync } from 'node:fs';

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
}

const files = process.argv.length > 2 ? process.argv.slice(2) : ['.tmp/vitest.json'];
let passed = 0;
let failed = 0;
let skipped = 0;
const missing: string[] = [];
for (const file of files) {
  if (!existsSync(file)) {
    missing.push(file);
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8')) as Report;
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
}
console.log(
  `${passed} passed, ${failed} failed, ${skipped} skipped` +
    (missing.length > 0 ? ` (no report: ${missing.join(', ')})` : ''),
);
