#!/usr/bin/env node
// diego-operator: one binary, several roles (see docs/architecture.md).
import { parseArgs } from 'node:util';
import { createLogger } from './lib/log.ts';

const USAGE = `Usage: diego-operator <command> [flags]

Commands:
  dev           Run everything locally: a control plane on 127.0.0.1, the CRDs, the operator, a sample app.
  controller    The converger, auctioneer and task controller, plus the admission webhook server.
  cell-agent    Diego's rep and executor for one cell.
  bbs           Diego's BBS API (protobuf over HTTP, mutual TLS) on top of the CRDs.
  install-crds  Install or update the Diego CRDs in the cluster of --kubeconfig.
  help          Show this text.

Common flags:
  --kubeconfig PATH   Cluster to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
`;

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  const log = createLogger();
  switch (command) {
    case 'dev': {
      const { values } = parseArgs({
        args: rest,
        options: { 'no-sample': { type: 'boolean' } },
      });
      const { runDev } = await import('./cmd/dev.ts');
      return runDev({ log, sample: !values['no-sample'] });
    }
    case 'controller': {
      const { values } = parseArgs({
        args: rest,
        options: {
          kubeconfig: { type: 'string' },
          'webhook-port': { type: 'string', default: '9443' },
          'webhook-cert-dir': { type: 'string', default: '/tmp/k8s-webhook-server/serving-certs' },
          'metrics-address': { type: 'string', default: ':8080' },
          'system-namespace': { type: 'string', default: 'diego-system' },
        },
      });
      const { runController } = await import('./cmd/controller.ts');
      return runController({
        log,
        kubeconfig: values.kubeconfig,
        webhookPort: Number(values['webhook-port']),
        webhookCertDir: values['webhook-cert-dir'],
        metricsAddress: values['metrics-address'],
        systemNamespace: values['system-namespace'],
      });
    }
    case 'install-crds': {
      const { values } = parseArgs({ args: rest, options: { kubeconfig: { type: 'string' } } });
      const { loadKubeConfig, installCRDs } = await import('./lib/kube.ts');
      await installCRDs(loadKubeConfig(values.kubeconfig));
      log.info('Diego CRDs installed and established');
      return 0;
    }
    case 'cell-agent':
    case 'bbs':
      process.stderr.write(
        `diego-operator ${command}: this role is not built yet (see the open issues: cell agent #4, BBS facade #5).\n`,
      );
      return 2;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`diego-operator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
