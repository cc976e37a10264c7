// Runs a local control plane (etcd + kube-apiserver + kube-controller-manager) until Ctrl-C.
//   node hack/controlplane.ts start [--no-controller-manager]
// Prints `export KUBECONFIG=...` on stdout; logs go to stderr.
import { pino } from 'pino';
import { startControlPlane, type ControlPlane } from '../src/lib/controlplane/index.ts';

const usage = 'usage: node hack/controlplane.ts start [--no-controller-manager]';
const [command, ...flags] = process.argv.slice(2);
if (command !== 'start' || flags.some((f) => f !== '--no-controller-manager')) {
  console.error(usage);
  process.exit(2);
}

const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' }, pino.destination(2));
let cp: ControlPlane | undefined;
let signalled = 0;

// Registered before starting so that the library's own signal hook defers to us and we
// get a graceful stop. Ctrl-C during startup, or a second Ctrl-C, exits at once; the
// library's exit hook then SIGKILLs the children and removes the directory.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    signalled++;
    if (!cp || signalled > 1) process.exit(130);
    logger.info('stopping control plane (Ctrl-C again to force)');
    cp.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  });
}

try {
  cp = await startControlPlane({ controllerManager: !flags.includes('--no-controller-manager'), logger });
} catch (err) {
  // Plain text: the message carries a multi-line log tail.
  console.error(`failed to start the control plane: ${(err as Error).message}`);
  process.exit(1);
}
process.stdout.write(`export KUBECONFIG=${cp.kubeconfigPath}\n`);
logger.info({ server: cp.server, dir: cp.dir }, 'control plane running; press Ctrl-C to stop');
// Keep the event loop alive until a signal arrives.
setInterval(() => {}, 1 << 30);
