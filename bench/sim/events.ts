// The simulator's event queue: a binary min-heap on (time, sequence). Events at the same time run
// in the order they were scheduled, so a run is a deterministic function of its inputs.

export class EventQueue<T> {
  private times: number[] = [];
  private seqs: number[] = [];
  private items: T[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  push(time: number, item: T): void {
    if (!Number.isFinite(time)) throw new Error(`event time must be finite, got ${time}`);
    const { times, seqs, items } = this;
    let i = items.length;
    times.push(time); seqs.push(this.seq++); items.push(item);
    // Sift up.
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** The earliest event (ties: the first scheduled), or undefined when empty. */
  pop(): { time: number; item: T } | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const out = { time: this.times[0], item: this.items[0] };
    const last = n - 1;
    if (last > 0) this.swap(0, last);
    this.times.pop(); this.seqs.pop(); this.items.pop();
    // Sift down.
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < last && this.less(l, m)) m = l;
      if (r < last && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return out;
  }

  peekTime(): number | undefined {
    return this.items.length > 0 ? this.times[0] : undefined;
  }

  private less(a: number, b: number): boolean {
    return this.times[a] < this.times[b] || (this.times[a] === this.times[b] && this.seqs[a] < this.seqs[b]);
  }

  private swap(a: number, b: number): void {
    const { times, seqs, items } = this;
    [times[a], times[b]] = [times[b], times[a]];
    [seqs[a], seqs[b]] = [seqs[b], seqs[a]];
    [items[a], items[b]] = [items[b], items[a]];
  }
}
