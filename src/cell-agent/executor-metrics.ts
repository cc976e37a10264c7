// The executor's metrics on the process registry (served on the agent's /metrics): the download cache's hits,
// misses, evictions and size, and instance identity certificates issued (Diego's credmanager counter names).
import { Counter, Gauge } from 'prom-client';
import { registry } from '../lib/metrics.ts';
import type { CacheMetrics } from './executor/download-cache.ts';
import type { IdentityMetrics } from './executor/identity.ts';

const counter = (name: string, help: string) => new Counter({ name, help, registers: [registry] });

const hits = counter('DownloadCacheHits', 'Cached downloads served from the cell cache after a revalidation (304).');
const misses = counter('DownloadCacheMisses', 'Cached downloads fetched (absent from the cell cache, or changed).');
const evictions = counter('DownloadCacheEvictions', 'Entries evicted from the cell download cache to make room.');
const bytes = new Gauge({
  name: 'DownloadCacheBytes',
  help: 'Bytes the cell download cache holds (archives and extracted directories).',
  registers: [registry],
});
const issued = counter('CredCreationSucceededCount', 'Instance identity certificates issued (creation and rotation).');
const failed = counter('CredCreationFailedCount', 'Instance identity certificates that could not be issued.');

export const cacheMetrics: CacheMetrics = {
  hit: () => hits.inc(),
  miss: () => misses.inc(),
  evicted: () => evictions.inc(),
  size: (n) => bytes.set(n),
};

export const identityMetrics: IdentityMetrics = { issued: () => issued.inc(), failed: () => failed.inc() };
