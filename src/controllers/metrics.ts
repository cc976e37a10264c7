// The controllers' metrics, named after Diego's (bbs, auctioneer) so dashboards carry over.
import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../lib/metrics.ts';

const gauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
const counter = (name: string, help: string) => new Counter({ name, help, registers: [registry] });
const seconds = (name: string, help: string) =>
  new Histogram({ name, help, registers: [registry], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30] });

export const metrics = {
  lrpsDesired: gauge('LRPsDesired', 'Instances desired across all DesiredLRPs'),
  lrpsRunning: gauge('LRPsRunning', 'ActualLRPs in state RUNNING'),
  lrpsClaimed: gauge('LRPsClaimed', 'ActualLRPs in state CLAIMED'),
  lrpsUnclaimed: gauge('LRPsUnclaimed', 'ActualLRPs in state UNCLAIMED'),
  lrpsMissing: gauge('LRPsMissing', 'Desired instances with no ActualLRP'),
  lrpsExtra: gauge('LRPsExtra', 'ActualLRPs beyond the desired instance count'),
  crashedActualLRPs: gauge('CrashedActualLRPs', 'ActualLRPs in state CRASHED'),
  crashingDesiredLRPs: gauge('CrashingDesiredLRPs', 'DesiredLRPs with at least one CRASHED instance'),
  suspectRunningActualLRPs: gauge('SuspectRunningActualLRPs', 'SUSPECT ActualLRPs still RUNNING'),
  presentCells: gauge('PresentCells', 'Cells whose lease is current'),
  convergenceLRPDuration: seconds(
    'ConvergenceLRPDuration',
    'Duration of a full LRP convergence pass, from its start until every DesiredLRP it queued was reconciled (s)',
  ),
  convergenceLRPRuns: counter('ConvergenceLRPRuns', 'Full LRP convergence passes'),
  lrpAuctionsStarted: counter('AuctioneerLRPAuctionsStarted', 'LRP instances placed by the auction'),
  lrpAuctionsFailed: counter('AuctioneerLRPAuctionsFailed', 'LRP instances the auction could not place'),
  taskAuctionsStarted: counter('AuctioneerTaskAuctionsStarted', 'Tasks placed by the auction'),
  taskAuctionsFailed: counter('AuctioneerTaskAuctionsFailed', 'Tasks the auction could not place'),
  fetchStatesDuration: seconds('AuctioneerFetchStatesDuration', 'Time to assemble the cell states for an auction (s)'),
  auctionDuration: seconds('AuctioneerAuctionDuration', 'Time to run and commit one auction batch (s)'),
  rateLimiterDuration: new Histogram({
    name: 'rest_client_rate_limiter_duration_seconds',
    help: "Time the controllers' requests waited for the client-side rate limit (--kube-api-qps, --kube-api-burst)",
    registers: [registry],
    buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10],
  }),
  tasksPending: gauge('TasksPending', 'Tasks in state Pending'),
  tasksRunning: gauge('TasksRunning', 'Tasks in state Running'),
  tasksCompleted: gauge('TasksCompleted', 'Tasks in state Completed'),
  tasksResolving: gauge('TasksResolving', 'Tasks in state Resolving'),
  convergenceTaskDuration: seconds('ConvergenceTaskDuration', 'Duration of a full task convergence pass (s)'),
  taskCallbacks: counter('TaskCompletionCallbacks', 'Completion callbacks POSTed (any outcome)'),
  endpointWrites: new Counter({
    name: 'endpoint_slices_writes_total',
    help: 'Writes for the Services and EndpointSlices of routed DesiredLRPs, by kind and verb (apply, delete): none while nothing changes',
    labelNames: ['kind', 'verb'] as const,
    registers: [registry],
  }),
};
