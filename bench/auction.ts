// Auction benchmark: places 100k LRP instances of mixed sizes on 1000 cells in 3 zones, in batches of 5000 (one
// auction each), carrying cell state from one auction to the next. Prints figures; it asserts nothing.
//
//   npm run bench:auction            (env: CELLS, INSTANCES, BATCH, SEED to change the scenario)
import { applyResults, runAuction, type CellState, type LRPAuction } from '../src/auction/index.ts';
import { makeCell, makeLrp, rng } from '../src/auction/testing.ts';

const CELLS = Number(process.env.CELLS ?? 1000);
const INSTANCES = Number(process.env.INSTANCES ?? 100_000);
const BATCH = Number(process.env.BATCH ?? 5000);
const SEED = Number(process.env.SEED ?? 1);
const ZONES = 3;
// A Diego cell of the usual size: 64 GB memory, 256 GB disk, 250 containers.
const CELL = { memoryMb: 64 * 1024, diskMb: 256 * 1024, containers: 250 };

const random = rng(SEED);
const pick = <T>(choices: readonly (readonly [T, number])[]): T => {
  let r = random() * choices.reduce((a, [, w]) => a + w, 0);
  for (const [v, w] of choices) if ((r -= w) < 0) return v;
  return choices[choices.length - 1]![0];
};
const MEMORY = [
  [64, 15],
  [128, 25],
  [256, 25],
  [512, 20],
  [1024, 10],
  [2048, 5],
] as const;
const DISK = [
  [256, 20],
  [512, 30],
  [1024, 30],
  [2048, 15],
  [4096, 5],
] as const;

function workload(): LRPAuction[] {
  const lrps: LRPAuction[] = [];
  for (let app = 0; lrps.length < INSTANCES; app++) {
    const n = Math.min(INSTANCES - lrps.length, 1 + Math.floor(random() * 20));
    const memoryMb = pick(MEMORY);
    const diskMb = pick(DISK);
    const rootFs = random() < 0.8 ? 'preloaded:cflinuxfs4' : 'docker:///cloudfoundry/app';
    for (let i = 0; i < n; i++)
      lrps.push(makeLrp(`app-${app}`, i, { key: `ns/app-${app}-${i}`, memoryMb, diskMb, rootFs }));
  }
  return lrps;
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

function main(): void {
  let cells: CellState[] = Array.from({ length: CELLS }, (_, i) =>
    makeCell(`cell-${i}`, {
      zone: `z${i % ZONES}`,
      index: i,
      total: CELL,
      rootfsProviders: [{ name: 'preloaded', properties: ['cflinuxfs4'] }, { name: 'docker' }],
    }),
  );
  const lrps = workload();
  const apps = new Set(lrps.map((l) => l.processGuid)).size;
  console.log(
    `auction bench: ${lrps.length} instances of ${apps} apps on ${CELLS} cells in ${ZONES} zones, batches of ${BATCH}`,
  );

  const peak = { rss: 0, heapUsed: 0 };
  const sample = (): void => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
  };
  const perAuctionMs: number[] = [];
  const perZone = new Map<string, number[]>();
  const errors = new Map<string, number>();
  let placed = 0;
  let auctionMs = 0;
  const started = performance.now();
  for (let from = 0; from < lrps.length; from += BATCH) {
    const batch = lrps.slice(from, from + BATCH);
    const t0 = performance.now();
    const results = runAuction(cells, batch, []);
    const dt = performance.now() - t0;
    sample();
    auctionMs += dt;
    perAuctionMs.push(dt);
    placed += results.lrps.placed.length;
    for (const p of results.lrps.placed) {
      const counts = perZone.get(p.auction.processGuid) ?? new Array<number>(ZONES).fill(0);
      counts[Number(p.zone.slice(1))]!++;
      perZone.set(p.auction.processGuid, counts);
    }
    for (const f of results.lrps.failed) errors.set(f.placementError, (errors.get(f.placementError) ?? 0) + 1);
    // The work is accepted; by the next auction the containers have started.
    cells = applyResults(cells, results).map((c) => (c.startingContainers === 0 ? c : { ...c, startingContainers: 0 }));
    sample();
  }
  const wallMs = performance.now() - started;

  const used = cells.map((c) => c.total.memoryMb - c.available.memoryMb);
  const mean = used.reduce((a, b) => a + b, 0) / used.length;
  const sd = Math.sqrt(used.reduce((a, b) => a + (b - mean) ** 2, 0) / used.length);
  let worstZone = 0;
  let worstApp = '';
  for (const [app, counts] of perZone) {
    const spread = Math.max(...counts) - Math.min(...counts);
    if (spread > worstZone) [worstZone, worstApp] = [spread, app];
  }
  const containers = cells.map((c) => c.total.containers - c.available.containers);
  const sortedMs = [...perAuctionMs].sort((a, b) => a - b);

  console.log(`auctions:               ${perAuctionMs.length}`);
  console.log(`placed / failed:        ${placed} / ${lrps.length - placed}`);
  for (const [e, n] of errors) console.log(`  failed "${e}": ${n}`);
  console.log(`wall time:              ${(wallMs / 1000).toFixed(2)} s (auctions ${(auctionMs / 1000).toFixed(2)} s)`);
  console.log(
    `placements per second:  ${Math.round(placed / (wallMs / 1000))} (auction time only: ${Math.round(placed / (auctionMs / 1000))})`,
  );
  console.log(
    `per auction:            min ${sortedMs[0]?.toFixed(0)} ms, median ${quantile(sortedMs, 0.5).toFixed(0)} ms, max ${sortedMs[sortedMs.length - 1]?.toFixed(0)} ms`,
  );
  console.log(`peak memory:            rss ${mb(peak.rss)}, heapUsed ${mb(peak.heapUsed)}`);
  console.log(
    `memory used per cell:   mean ${(mean / 1024).toFixed(1)} GB of ${CELL.memoryMb / 1024} GB, CoV ${(sd / mean).toFixed(4)} (min ${(Math.min(...used) / 1024).toFixed(1)}, max ${(Math.max(...used) / 1024).toFixed(1)} GB)`,
  );
  console.log(`containers per cell:    min ${Math.min(...containers)}, max ${Math.max(...containers)}`);
  console.log(
    `worst zone imbalance:   ${worstZone} (max over apps of max-min instances per zone${worstApp ? `; e.g. ${worstApp}` : ''})`,
  );
}

main();
