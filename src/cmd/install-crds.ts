// The `install-crds` role: installs or updates the Diego CRDs and waits until the API server serves them.
import type { Command } from 'commander';
import { installCRDs, loadKubeConfig } from '../lib/kube.ts';
import { createLogger } from '../lib/log.ts';
import { kubeconfigOption, roleCommand } from './flags.ts';

export function installCrdsCommand(): Command {
  return roleCommand('install-crds', 'Install or update the Diego CRDs in the cluster of --kubeconfig.')
    .addOption(kubeconfigOption())
    .action(async (f: { kubeconfig?: string }) => {
      await installCRDs(loadKubeConfig(f.kubeconfig));
      createLogger().info('Diego CRDs installed and established');
    });
}
