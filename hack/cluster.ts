// Runs a one-node cluster from real parts (src/lib/node: control plane, kube-scheduler, containerd, kubelet,
// kube-proxy) until Ctrl-C. Builds (or finds cached) the node's binaries first.
//   node hack/cluster.ts
// Prints `export KUBECONFIG=...` on stdout; logs go to stderr.
import { pino } from 'pino';
import { hackBuild, imageCacheDir, startCluster, type Cluster } from '../src/lib/node/index.ts';
import { pauseImage } from '../src/lib/node/oci-archive.ts';

const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' }, pino.destination(2));
const nodeBinDir = hackBuild('build-node.sh');
const schedulerBin = hackBuild('build-kube-scheduler.sh');
const cache = imageCacheDir();
const running: { cluster?: Cluster } = {};
const starting = new AbortController();
let signalled = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    signalled++;
    const { cluster } = running;
    if (signalled > 1) process.exit(130);
    if (!cluster) {
      logger.info('stopping what was started (Ctrl-C again to force)');
      starting.abort();
      return;
    }
    logger.info('stopping the cluster (Ctrl-C again to force)');
    cluster.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  });
}
const cluster = (running.cluster = await startCluster({
  nodeBinDir,
  schedulerBin,
  pauseImage: pauseImage(cache),
  logger,
  signal: starting.signal,
  // Another OCI runtime for containerd (default Debian's /usr/sbin/runc).
  runc: process.env.DIEGO_NODE_RUNC,
}));
console.log(`export KUBECONFIG=${cluster.cp.kubeconfigPath}`);
logger.info({ node: cluster.nodeName, ip: cluster.nodeIp, dir: cluster.dir }, 'cluster running; press Ctrl-C to stop');
// Children are unref()ed: keep this process alive until a signal stops the cluster.
setInterval(() => {}, 2 ** 30);
