#!/usr/bin/env node
// A runc cell agent for the chaos suite: the cell-agent role (src/cmd/cell-agent.ts runCellAgent) with one
// difference, its CNI network. `diego-operator cell-agent --backend runc` always wires containers to the
// bridge diego0 on 10.254.0.0/22, which `make run` (and the make-run test another suite may be running) use too;
// here the bridge and subnet are flags, so a chaos cell shares nothing with them. Everything else — executor,
// rep, ops server, SIGINT/SIGTERM handling — is the real agent's code.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { RuncBackend } from '../../src/cell-agent/backends/runc.ts';
import { serveUntilStopped } from '../../src/cell-agent/drain.ts';
import { registerLogRoutes } from '../../src/cell-agent/logs/stream-server.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import { executorOptions } from '../../src/cmd/cell-agent.ts';
import { loadKubeConfig } from '../../src/lib/kube.ts';
import { createLogger } from '../../src/lib/log.ts';
import { startOpsServer } from '../../src/lib/metrics.ts';

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    'cell-id': { type: 'string' },
    'state-dir': { type: 'string' },
    'system-namespace': { type: 'string', default: 'diego-system' },
    'memory-mb': { type: 'string', default: '4096' },
    'disk-mb': { type: 'string', default: '16384' },
    containers: { type: 'string', default: '250' },
    'polling-interval': { type: 'string', default: '30' },
    bridge: { type: 'string' },
    subnet: { type: 'string' },
  },
});

async function main(): Promise<void> {
  const log = createLogger();
  process.on('unhandledRejection', (err: unknown) => log.error({ err }, 'unhandled promise rejection'));
  const cellId = values['cell-id'];
  const stateDir = values['state-dir'];
  if (!cellId || !stateDir || !values.bridge || !values.subnet) {
    throw new Error('--cell-id, --state-dir, --bridge and --subnet are required');
  }
  const kc = loadKubeConfig(values.kubeconfig);
  const capacity = {
    memoryMb: Number(values['memory-mb']),
    diskMb: Number(values['disk-mb']),
    containers: Number(values.containers),
  };
  const pollingIntervalMs = Number(values['polling-interval']) * 1000;
  const executor = await executorOptions({
    log,
    cellId,
    ...capacity,
    stacks: ['busybox'],
    backend: 'runc',
    stateDir,
    pollingIntervalMs,
  });
  const rep = new Rep({
    executor,
    kc,
    cellId,
    zone: '',
    capacity,
    stacks: ['busybox'],
    backend: new RuncBackend({
      stateDir,
      network: {
        networkName: `chaos-${values.bridge}`,
        bridge: values.bridge,
        subnet: values.subnet,
        ipamDataDir: join(stateDir, 'ipam'),
      },
    }),
    log,
    systemNamespace: values['system-namespace'],
    pollingIntervalMs,
  });
  await rep.start();
  const ops = await startOpsServer({
    host: '127.0.0.1',
    port: 0,
    logger: log,
    routes: (app) => registerLogRoutes(app, rep.telemetry.hub),
  });
  log.info({ ops: ops.url }, 'chaos runc cell agent started');
  await serveUntilStopped(kc, rep, { log });
  await rep.stop();
  await ops.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`runc-agent: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
