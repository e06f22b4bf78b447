/**
 * Merges the batches handed in during one turn of the event loop into one call of `handle`.
 *
 * The consumer hands the verifier one batch per partition, several at once (one fetch
 * answers for every partition); deciding each on its own would cost one Postgres query, a
 * few Redis round trips and one produce request per partition. Merged, a fetch's logins
 * share them. Each caller's promise settles with the merged call: if it fails, every batch
 * in it is retried by its own partition (the handler is idempotent by event id). A batch is
 * never held back for longer than the turn it arrived in, so nothing waits for more traffic.
 */
export function coalesceBatches<T>(
  handle: (items: readonly T[]) => Promise<{ rejected?: readonly { item: T; reason: string }[] } | void>,
): (items: readonly T[]) => Promise<{ rejected: { item: T; reason: string }[] }> {
  type Rejected = { item: T; reason: string };
  let waiting: {
    items: readonly T[];
    resolve: (r: { rejected: Rejected[] }) => void;
    reject: (err: unknown) => void;
  }[] = [];
  let scheduled = false;

  async function flush(): Promise<void> {
    scheduled = false;
    const group = waiting;
    waiting = [];
    const items = group.length === 1 ? group[0]!.items : group.flatMap((g) => g.items);
    try {
      const outcome = await handle(items);
      // Each caller hears of the items it handed in that the handler refused.
      const rejected = outcome?.rejected ?? [];
      for (const g of group) {
        const own = new Set(g.items);
        g.resolve({ rejected: rejected.filter((r) => own.has(r.item)) });
      }
    } catch (err) {
      for (const g of group) g.reject(err);
    }
  }

  return (items) =>
    new Promise((resolve, reject) => {
      waiting.push({ items, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => void flush());
      }
    });
}
