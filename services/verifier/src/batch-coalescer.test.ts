import { describe, expect, it } from 'vitest';
import { coalesceBatches } from './batch-coalescer.js';

describe('coalesceBatches', () => {
  it('merges the batches handed in during one turn into one call, in order', async () => {
    const calls: number[][] = [];
    const handle = coalesceBatches<number>(async (items) => {
      calls.push([...items]);
    });
    await Promise.all([handle([1, 2]), handle([3]), handle([4, 5])]);
    await handle([6]);
    expect(calls).toEqual([[1, 2, 3, 4, 5], [6]]);
  });

  it('rejects every batch of a failed call, and the next call starts afresh', async () => {
    let fail = true;
    const seen: number[][] = [];
    const handle = coalesceBatches<number>(async (items) => {
      seen.push([...items]);
      if (fail) throw new Error('redis down');
    });
    const results = await Promise.allSettled([handle([1]), handle([2])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(handle([1])).resolves.toEqual({ rejected: [] });
    expect(seen).toEqual([[1, 2], [1]]);
  });

  it('hands each batch the items of its own that the merged call refused', async () => {
    const a = { n: 1 };
    const b = { n: 2 };
    const c = { n: 3 };
    const handle = coalesceBatches<{ n: number }>(async (items) => ({
      rejected: items.filter((i) => i.n !== 2).map((item) => ({ item, reason: `no ${item.n}` })),
    }));
    const [first, second] = await Promise.all([handle([a, b]), handle([c])]);
    expect(first).toEqual({ rejected: [{ item: a, reason: 'no 1' }] });
    expect(second).toEqual({ rejected: [{ item: c, reason: 'no 3' }] });
  });

  it('does not hold a batch back while another call is still running', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const calls: number[][] = [];
    const handle = coalesceBatches<number>(async (items) => {
      calls.push([...items]);
      if (items[0] === 1) await gate;
    });
    const first = handle([1]);
    await new Promise((resolve) => setImmediate(resolve));
    await handle([2]); // settles while the first call is still waiting
    expect(calls).toEqual([[1], [2]]);
    release();
    await first;
  });
});
