// The instances DesireLRP and a scale-up by UpdateDesiredLRP create before they answer, as Diego's handlers do
// (bbs handlers/desired_lrp_handlers.go startInstanceRange): a client that lists ActualLRPs right after the call
// finds them UNCLAIMED. The records are the converger's own (src/lifecycle/ops.ts createInstance), so the two racing
// for an index is harmless: the deterministic name makes the loser's create move on (it exists).
import type { IDesiredLRP } from '../crds/models.ts';
import { CREATE_CONCURRENCY, createInstance } from '../lifecycle/ops.ts';
import { pool } from '../lib/pool.ts';
import type { Ctx } from './route.ts';

/**
 * At most this many instances are created within one call (Diego has no cap: it creates them all, 1000 at a
 * time). One API write each keeps a call of this size within seconds; indices past it are the converger's, which
 * is already creating them as the DesiredLRP's event reaches it.
 */
export const MAX_INSTANCES_PER_CALL = 1000;

/**
 * Creates indices [from, to) of `d` UNCLAIMED, `CREATE_CONCURRENCY` at a time. Never fails: as in Diego, an index
 * that could not be created is left to convergence (the converger creates any missing index it sees). Resolves
 * how many could not be created.
 */
export async function createInstances(ctx: Ctx, d: IDesiredLRP, from: number, to: number): Promise<number> {
  const end = Math.min(to, from + MAX_INSTANCES_PER_CALL);
  let failed = 0;
  const create = async (index: number) => {
    try {
      // Moved on: it exists already (the converger made it): someone else has it in hand.
      await createInstance(ctx.client, d, index);
    } catch (err) {
      failed++;
      if (failed === 1) ctx.log?.warn({ err, processGuid: d.spec.processGuid, index }, 'instance not created');
    }
  };
  await pool(
    Array.from({ length: Math.max(0, end - from) }, (_, i) => () => create(from + i)),
    CREATE_CONCURRENCY,
  );
  if (failed > 0)
    ctx.log?.warn({ processGuid: d.spec.processGuid, failed }, 'instances not created; the converger will create them');
  return failed;
}
