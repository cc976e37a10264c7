#!/usr/bin/env node
// diego-operator: one binary, several roles (README.md, Commands). Each role defines its flags in its own file
// (src/cmd/<role>.ts); only the role asked for is loaded, so `--help` and every start stay quick.
import { Command, CommanderError } from 'commander';

const ROLES: Record<string, { summary: string; load: () => Promise<Command> }> = {
  dev: {
    summary: 'Run everything locally: a control plane on 127.0.0.1, the CRDs, the operator, a sample app.',
    load: async () => (await import('./cmd/dev.ts')).devCommand(),
  },
  controller: {
    summary: 'The converger, auctioneer and task controller, plus the admission webhook server.',
    load: async () => (await import('./cmd/controller.ts')).controllerCommand(),
  },
  'cell-agent': {
    summary: "Diego's rep and executor for one cell.",
    load: async () => (await import('./cmd/cell-agent.ts')).cellAgentCommand(),
  },
  bbs: {
    summary: "Diego's BBS API (protobuf over HTTP, mutual TLS) on top of the CRDs.",
    load: async () => (await import('./cmd/bbs.ts')).bbsCommand(),
  },
  'install-crds': {
    summary: 'Install or update the Diego CRDs in the cluster of --kubeconfig.',
    load: async () => (await import('./cmd/install-crds.ts')).installCrdsCommand(),
  },
  'route-emitter': {
    summary: "Diego's route-emitter: registers routed instances with gorouter over NATS.",
    load: async () => (await import('./cmd/route-emitter.ts')).routeEmitterCommand(),
  },
  'delete-workloads': {
    summary: 'Delete every DesiredLRP, Task and ActualLRP and wait until their containers are gone.',
    load: async () => (await import('./cmd/delete-workloads.ts')).deleteWorkloadsCommand(),
  },
};

/** How long the process may linger after its role has returned or failed. */
const EXIT_GRACE_MS = 10_000;

/**
 * A role returns (or fails) once it has stopped everything it started, and the process ends when nothing is left.
 * Should something still be open (a bug), end anyway rather than hang a pod's shutdown until its SIGKILL.
 */
function exitSoon(): void {
  setTimeout(() => {
    process.stderr.write(`diego-operator: still running ${EXIT_GRACE_MS / 1000} s after stopping; exiting\n`);
    process.exit();
  }, EXIT_GRACE_MS).unref();
}

/** Runs the role named in argv; resolves to the exit code. */
async function main(argv: string[]): Promise<number> {
  if (argv.length === 0) argv = ['help'];
  if (argv[0] === 'help' && argv[1] && !(argv[1] in ROLES)) argv = argv.slice(1); // refused as an unknown command
  const program = new Command('diego-operator')
    .description(
      "Cloud Foundry's Diego scheduler as a Kubernetes operator. One binary; the first argument is the role.",
    )
    .helpOption('-h, --help', 'Show this text.')
    .helpCommand('help [command]', 'Show the roles, or the flags of one.')
    .addHelpText(
      'after',
      `
Run \`diego-operator <command> --help\` for its flags and their defaults.

Environment:
  KUBECONFIG   The cluster, unless --kubeconfig names one (else ~/.kube/config, or in-cluster).
  LOG_LEVEL    trace, debug, info (default), warn, error or silent.
  LOG_FORMAT   json (default when stdout is not a terminal) or pretty (one readable line per entry; default on a
               terminal).`,
    )
    .exitOverride()
    .configureOutput({ outputError: (message, write) => write(oneLine(message, '')) });
  // The role asked for (also in `help <role>`) is loaded with its flags; the others only show their summary.
  const asked = argv[0] === 'help' ? argv[1] : argv[0];
  for (const [name, role] of Object.entries(ROLES)) {
    const command = name === asked ? await role.load() : new Command(name);
    command.copyInheritedSettings(program);
    command.configureOutput({
      outputError: (message, write) => write(oneLine(message, ` (see diego-operator ${name} --help)`)),
    });
    program.addCommand(command.summary(role.summary));
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    // commander printed its own message (oneLine): --help is exit 0; a usage error, 2.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

/** commander's "error: unknown option '--x'\n(Did you mean --y?)" as one line, `diego-operator: …`. */
function oneLine(message: string, hint: string): string {
  return `diego-operator: ${message
    .replace(/^error: /, '')
    .trim()
    .replace(/\s*\n\s*/g, ' ')}${hint}\n`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    exitSoon();
  },
  (err: unknown) => {
    process.stderr.write(`diego-operator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
    exitSoon();
  },
);
