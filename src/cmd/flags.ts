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

/** A flag's value as a number ≥ 0, or an error that names the flag. */
export function nonNegative(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number ≥ 0 (got "${value}")`);
  return n;
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
