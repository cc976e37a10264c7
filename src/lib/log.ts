// One pino logger per process; components take children with { component }. Logs go to stdout: JSON lines for
// log collectors, or one readable line per entry (pino-pretty) when stdout is a terminal. LOG_FORMAT=json|pretty
// overrides the choice; LOG_LEVEL sets the level.
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

/** LOG_FORMAT if set, else pretty on a terminal and JSON otherwise. */
export function logFormat(env: string | undefined, isTTY: boolean): LogFormat {
  if (env === 'json' || env === 'pretty') return env;
  if (env) throw new Error(`LOG_FORMAT must be json or pretty (got "${env}")`);
  return isTTY ? 'pretty' : 'json';
}

export function createLogger(
  level = process.env.LOG_LEVEL ?? 'info',
  format: LogFormat = logFormat(process.env.LOG_FORMAT, process.stdout.isTTY === true),
): Logger {
  const options = { level, base: { pid: process.pid } };
  if (format === 'json') return pino(options);
  // Loaded only here, so JSON logging (every deployed role) never pays for it; synchronous, in this thread, so log
  // lines and what the process prints itself keep their order.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pino(
    options,
    pretty({ destination: 1, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
  );
}
