import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'hack/**/*.test.ts', 'test/chaos/**/*.test.ts'],
          exclude: ['**/*.integration.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'src/**/*.integration.test.ts'],
          // One real control plane for the whole project, started once (see test/integration/global-setup.ts).
          globalSetup: ['test/integration/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 240_000,
        },
      },
      {
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          // On a kind cluster (hack/kind-e2e.sh) the node is kind's: our node's own checks do not apply.
          exclude: process.env.DIEGO_CLUSTER_KUBECONFIG ? ['test/cluster/node.test.ts'] : [],
          // One real cluster (control plane + a kubelet-run node) for the whole project: test/cluster/global-setup.ts.
          globalSetup: ['test/cluster/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
