// The worker's variant cache: least recently used out first, within a byte budget, releasing
// what it evicts. Expected orders worked out by hand from the sequence of calls.
import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../src/worker/bounded-cache.js';

function cache(budget: number) {
  const released: string[] = [];
  const c = new BoundedCache<string, string>(budget, async (value) => {
    released.push(value);
  });
  return { c, released };
}

describe('BoundedCache', () => {
  it('evicts the least recently used values until a new one fits, releasing each', async () => {
    const { c, released } = cache(10);
    expect(await c.set('a', 'A', 4)).toBe(true);
    expect(await c.set('b', 'B', 4)).toBe(true);
    // Using a makes b the least recently used.
    expect(c.get('a')).toBe('A');
    expect(await c.set('c', 'C', 4)).toBe(true);
    expect(released).toEqual(['B']);
    expect([c.size, c.bytes]).toEqual([2, 8]);
    expect(c.get('b')).toBeUndefined();
    // 9 bytes need both others out.
    expect(await c.set('d', 'D', 9)).toBe(true);
    expect(released).toEqual(['B', 'A', 'C']);
    expect([c.size, c.bytes]).toEqual([1, 9]);
  });

  it('keeps nothing larger than the whole budget, and leaves what it holds alone for it', async () => {
    const { c, released } = cache(10);
    await c.set('a', 'A', 6);
    expect(await c.set('huge', 'H', 11)).toBe(false);
    expect(released).toEqual([]);
    expect(c.get('a')).toBe('A');
    expect(c.get('huge')).toBeUndefined();
  });

  it('replaces a value stored again under its key, releasing the old one, and releases everything on clear', async () => {
    const { c, released } = cache(10);
    await c.set('a', 'A1', 3);
    await c.set('a', 'A2', 5);
    expect(released).toEqual(['A1']);
    expect([c.size, c.bytes]).toEqual([1, 5]);
    await c.set('b', 'B', 5);
    await c.clear();
    expect(released).toEqual(['A1', 'A2', 'B']);
    expect([c.size, c.bytes]).toEqual([0, 0]);
  });

  it('with a budget of 0 keeps nothing', async () => {
    const { c } = cache(0);
    expect(await c.set('a', 'A', 1)).toBe(false);
    expect(c.size).toBe(0);
  });
});
