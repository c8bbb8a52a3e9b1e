// A least-recently-used cache bounded by the memory its values hold, which it releases itself
// when it evicts them or is cleared.

export class BoundedCache<K, V> {
  private readonly entries = new Map<K, { value: V; bytes: number }>();
  private held = 0;

  constructor(
    /** Most bytes the cached values may hold together. */
    readonly budgetBytes: number,
    private readonly release: (value: V) => Promise<void>,
  ) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value, now the most recently used. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /**
   * Keeps `value`, evicting the least recently used values until it fits. A value larger than
   * the whole budget is not kept: false, and the caller still owns it.
   */
  async set(key: K, value: V, bytes: number): Promise<boolean> {
    const previous = this.entries.get(key);
    if (previous) await this.evict(key, previous);
    if (bytes > this.budgetBytes) return false;
    for (const [oldest, entry] of this.entries) {
      if (this.held + bytes <= this.budgetBytes) break;
      await this.evict(oldest, entry);
    }
    this.entries.set(key, { value, bytes });
    this.held += bytes;
    return true;
  }

  async clear(): Promise<void> {
    for (const [key, entry] of this.entries) await this.evict(key, entry);
  }

  private async evict(key: K, entry: { value: V; bytes: number }): Promise<void> {
    this.entries.delete(key);
    this.held -= entry.bytes;
    await this.release(entry.value);
  }
}
