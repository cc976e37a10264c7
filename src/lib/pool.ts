// Bounded concurrency for a batch of API writes.

/** Runs the thunks with at most `limit` in flight; a failed write is logged by its caller's retry path. */
export async function pool(thunks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < thunks.length) {
      const i = next++;
      try {
        await thunks[i]!();
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, thunks.length) }, worker));
  if (errors.length) throw new AggregateError(errors, `${errors.length} of ${thunks.length} writes failed`);
}
