// What every role's command shares: building a commander Command, and turning flag values (strings, as given) into
// options, with errors that name the flag. Each role defines its own flags in its own file (e.g. cellAgentCommand in
// cell-agent.ts); main.ts puts the roles together.
import { Command, Option } from 'commander';
import type { OpsAuthMode } from '../lib/ops-auth.ts';

/** A role's command: its flags follow in the role's file; `--help`/`-h` (main.ts) print them with their defaults. */
export function roleCommand(name: string, description: string): Command {
  return new Command(name).description(description);
}

/** --kubeconfig, which every role that talks to a cluster takes. */
export function kubeconfigOption(): Option {
  return new Option('--kubeconfig <path>', 'Cluster to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster).');
}

/** A flag with a value and a default, shown in --help as `(default: <value>)`. */
export function valueOption(flags: string, description: string, value: string): Option {
  return new Option(flags, description).default(value, value === '' ? '""' : value);
}

/** A flag that may be given several times; its values in order (none: []). */
export function repeatableOption(flags: string, description: string): Option {
  return new Option(flags, `${description} Repeatable.`)
    .argParser((value: string, previous: string[]) => [...previous, value])
    .default([], 'none');
}

/** kubernetes (TokenReview + SubjectAccessReview), none, or auto (kubernetes unless on loopback). */
export function authMode(flag: string, value: string): OpsAuthMode | 'auto' {
  if (value === 'kubernetes' || value === 'none' || value === 'auto') return value;
  throw new Error(`${flag} must be kubernetes, none or auto (got "${value}")`);
}

export function bool(flag: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new Error(`${flag} must be true or false (got "${value}")`);
}

/** A flag's value as a number ≥ 0 (fractions allowed), or an error that names the flag. */
export function nonNegative(flag: string, value: string): number {
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number ≥ 0 (got "${value}")`);
  return n;
}

/** A flag's value as a whole number from `min` (default 0) up to `max`, or an error that names the flag. */
export function wholeNumber(flag: string, value: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new Error(`${flag} must be a whole number ${range} (got "${value}")`);
  }
  return n;
}

/** A port flag's value: a whole number from 0 (any free port) to 65535. */
export function tcpPort(flag: string, value: string): number {
  return wholeNumber(flag, value, 0, 65535);
}

/**
 * A listen address flag's value, host:port: the host may be empty (all interfaces: 0.0.0.0), a name, an IPv4
 * address or an IPv6 address in brackets ([::1]:8080); the port is 0 (any free port) to 65535. An error names the
 * flag and shows `example`.
 */
export function address(flag: string, value: string, example: string): { host: string; port: number } {
  const bad = () => new Error(`${flag} must be host:port, e.g. ${example} (got "${value}")`);
  const m = /^(?:\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.%\w-]*)\]|([^\s:[\]/]*)):(\d{1,5})$/.exec(value);
  if (!m) throw bad();
  const p = Number(m[3]);
  if (p > 65535) throw bad();
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: p };
}

/** A listen address flag checked as address(), its value as given (the role splits it when it listens). */
export function addressValue(flag: string, value: string, example: string): string {
  address(flag, value, example);
  return value;
}

/** As addressValue(), where empty means off. */
export function optionalAddress(flag: string, value: string, example: string): string {
  return value === '' ? value : addressValue(flag, value, example);
}

/** A comma-separated list, empty entries dropped. */
export function list(value: string): string[] {
  return value.split(',').filter(Boolean);
}

/** The trimmed contents of a secret file given by `flag`; undefined without one. */
export async function readSecretFile(flag: string, path: string | undefined): Promise<string | undefined> {
  if (!path) return undefined;
  const { readFile } = await import('node:fs/promises');
  return (
    await readFile(path, 'utf8').catch(() => {
      throw new Error(`cannot read ${flag} ${path}: mount the file there or leave the flag out`);
    })
  ).trim();
}
