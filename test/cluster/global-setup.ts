// Starts one real cluster for the cluster project (src/lib/node: control plane, kube-scheduler, and a node of
// containerd + kubelet + kube-proxy in its own network namespace), imports the test images, and hands the
// kubeconfig to the tests. Stops it at the end and checks that nothing of the node is left on this host.
// With DIEGO_CLUSTER_KUBECONFIG (hack/kind-e2e.sh) it uses that one-node cluster instead: the operator's image is
// DIEGO_CLUSTER_IMAGE, already on the node, and the node's host is the Docker container DIEGO_CLUSTER_NODE_CONTAINER.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureBinaries } from '../../src/lib/controlplane/index.ts';
import { kubeConfigFromString, rawRequest } from '../../src/lib/kube.ts';
import { createLogger } from '../../src/lib/log.ts';
import { hackBuild, imageCacheDir, startCluster, type Cluster } from '../../src/lib/node/index.ts';
import { busyboxImage, pauseImage } from '../../src/lib/node/oci-archive.ts';
import { killStrays, markRun, reportStrays } from '../support/strays.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    clusterKubeconfig: string;
    clusterKubeconfigPath: string;
    clusterKubectl: string;
    clusterNode: { name: string; ip: string; podCidr: string; netns: string; dir: string };
    /** ctr and the node's containerd socket (faults: killing a pod's container as a crash would). */
    clusterCtr: { bin: string; socket: string };
    /** Images present on the node (imagePullPolicy: Never): busybox, and the operator's (hack/build-image.sh). */
    clusterImages: { busybox: string; operator: string };
    /** helm (hack/build-helm.sh). */
    clusterHelm: string;
    /** Where the node's host is: this machine, or a Docker container (a kind node). */
    clusterHost: { container?: string };
    /** A cluster given by DIEGO_CLUSTER_KUBECONFIG (not started here). */
    clusterExternal: boolean;
    /** The cell agent's state dir on the node (cellAgent.stateDir). */
    clusterStateDir: string;
    /** An address of this machine that the cluster's pods reach (servers the suite starts for them bind it). */
    clusterHostIp: string;
  }
}

let cluster: Cluster | undefined;

export async function setup(project: TestProject): Promise<void> {
  markRun();
  const external = process.env.DIEGO_CLUSTER_KUBECONFIG;
  project.provide('clusterHelm', hackBuild('build-helm.sh'));
  project.provide('clusterKubectl', join(await ensureBinaries(), 'kubectl'));
  project.provide('clusterExternal', Boolean(external));
  if (external) return useExternal(project, external);
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const images = imageCacheDir();
  const nodeBinDir = hackBuild('build-node.sh');
  cluster = await startCluster({
    nodeBinDir,
    schedulerBin: hackBuild('build-kube-scheduler.sh'),
    pauseImage: pauseImage(images),
    logger: log,
  });
  const busybox = busyboxImage(images);
  await cluster.importImage(busybox.archive);
  const [operatorArchive, operator] = hackBuild('build-image.sh').split(' ') as [string, string];
  await cluster.importImage(operatorArchive);
  project.provide('clusterKubeconfig', cluster.cp.kubeconfig);
  project.provide('clusterKubeconfigPath', cluster.cp.kubeconfigPath);
  project.provide('clusterNode', {
    name: cluster.nodeName,
    ip: cluster.nodeIp,
    podCidr: cluster.podCidr,
    netns: cluster.netns,
    dir: cluster.dir,
  });
  project.provide('clusterCtr', { bin: join(nodeBinDir, 'ctr'), socket: cluster.containerdSocket });
  project.provide('clusterImages', { busybox: busybox.name, operator });
  project.provide('clusterHost', {});
  // Under the node's directory, a shared mount (the state is mounted Bidirectional), as /var/lib is on systemd hosts.
  project.provide('clusterStateDir', join(cluster.dir, 'cell'));
  // The host end of the node's veth pair: the API server's address, reached from pods through the node.
  project.provide(
    'clusterHostIp',
    new URL(kubeConfigFromString(cluster.cp.kubeconfig).getCurrentCluster()!.server).hostname,
  );
}

/** A one-node cluster made elsewhere (kind): its first node, the image given, the chart's default state dir. */
async function useExternal(project: TestProject, kubeconfigPath: string): Promise<void> {
  const image = process.env.DIEGO_CLUSTER_IMAGE;
  const container = process.env.DIEGO_CLUSTER_NODE_CONTAINER;
  if (!image || !container)
    throw new Error(
      'DIEGO_CLUSTER_KUBECONFIG needs DIEGO_CLUSTER_IMAGE and DIEGO_CLUSTER_NODE_CONTAINER (hack/kind-e2e.sh)',
    );
  const kubeconfig = readFileSync(kubeconfigPath, 'utf8');
  const { items } = await rawRequest<{
    items: {
      metadata: { name: string };
      spec: { podCIDR?: string };
      status: { addresses: { type: string; address: string }[] };
    }[];
  }>(kubeConfigFromString(kubeconfig), { method: 'GET', path: '/api/v1/nodes' });
  const [node] = items;
  if (!node || items.length !== 1) throw new Error(`the cluster suite wants one node, found ${items.length}`);
  project.provide('clusterKubeconfig', kubeconfig);
  project.provide('clusterKubeconfigPath', kubeconfigPath);
  project.provide('clusterNode', {
    name: node.metadata.name,
    ip: node.status.addresses.find((a) => a.type === 'InternalIP')?.address ?? '',
    podCidr: node.spec.podCIDR ?? '',
    netns: '',
    dir: '',
  });
  project.provide('clusterCtr', { bin: 'ctr', socket: '/run/containerd/containerd.sock' });
  project.provide('clusterImages', { busybox: '', operator: image });
  project.provide('clusterHost', { container });
  project.provide('clusterStateDir', '/var/lib/diego-cell');
  const hostIp = process.env.DIEGO_CLUSTER_HOST_IP;
  if (!hostIp)
    throw new Error('DIEGO_CLUSTER_KUBECONFIG needs DIEGO_CLUSTER_HOST_IP: an address of this machine its pods reach');
  project.provide('clusterHostIp', hostIp);
}

export async function teardown(): Promise<void> {
  if (!cluster) {
    reportStrays(killStrays()); // an external cluster: only what the tests started here
    return;
  }
  const { dir, netns } = cluster;
  try {
    await cluster.stop();
  } finally {
    reportStrays(killStrays());
  }
  // Nothing of the node may be left: mounts, its network namespace, its cgroups, its directory.
  const left: string[] = [];
  if (readFileSync('/proc/self/mountinfo', 'utf8').includes(dir)) left.push(`mounts under ${dir}`);
  if (execFileSync('ip', ['netns', 'list']).toString().includes(netns)) left.push(`network namespace ${netns}`);
  if (existsSync(join('/sys/fs/cgroup/memory', netns))) left.push(`cgroup /${netns}`);
  if (existsSync(dir) && !process.env.DIEGO_KEEP_CONTROL_PLANE) left.push(`directory ${dir}`);
  if (left.length > 0) throw new Error(`the cluster's node left behind: ${left.join(', ')}`);
}
