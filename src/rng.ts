/**
 * Seedable random numbers (mulberry32, Box–Muller normals): tiny, the same on every platform, and
 * with a state that fits in a checkpoint. Used wherever Lantern needs reproducible randomness.
 */
export class Rng {
  private spare: number | null = null;

  constructor(public state: number) {}

  private bits(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.bits() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    // (bits + 0.5) / 2^32 lies in (0, 1), so the log is finite.
    const r = Math.sqrt(-2 * Math.log((this.bits() + 0.5) / 4294967296));
    const a = (2 * Math.PI * (this.bits() + 0.5)) / 4294967296;
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }
}
