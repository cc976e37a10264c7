import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { logFormat } from './log.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** Logs one line from a child whose stdout is a pipe (not a terminal); returns what it wrote. */
async function logFromChild(env: Record<string, string>): Promise<string> {
  const script =
    "import { createLogger } from './src/lib/log.ts'; createLogger().child({ component: 'c' }).info('hi');";
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('LOG_FORMAT' in env)) delete childEnv.LOG_FORMAT;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: repo,
    env: childEnv,
    timeout: 60_000,
  });
  return stdout;
}

describe('log format', () => {
  it('is pretty on a terminal, JSON otherwise, and LOG_FORMAT decides when set', () => {
    expect(logFormat(undefined, true)).toBe('pretty');
    expect(logFormat(undefined, false)).toBe('json');
    expect(logFormat('', false)).toBe('json');
    expect(logFormat('json', true)).toBe('json');
    expect(logFormat('pretty', false)).toBe('pretty');
    expect(() => logFormat('xml', false)).toThrow('LOG_FORMAT must be json or pretty (got "xml")');
  });

  it('writes JSON lines to stdout when it is not a terminal', async () => {
    const out = await logFromChild({});
    expect(JSON.parse(out)).toMatchObject({ level: 30, component: 'c', msg: 'hi' });
  }, 60_000);

  it('writes one readable line with LOG_FORMAT=pretty', async () => {
    const out = await logFromChild({ LOG_FORMAT: 'pretty' });
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hi \{"component":"c"\}\n$/);
  }, 60_000);
});
