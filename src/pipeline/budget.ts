// A budget of memory that requests in flight hold: bytes of bodies being buffered, pixels being
// decoded or drawn. A request reserves what it will hold before it holds it, so the sum stays
// within the limit whatever the mix of requests, and gives it back when it is done.

export class BudgetError extends Error {
  constructor(
    message: string,
    /** The reservation is larger than the whole budget: it can never be granted. */
    readonly exceedsLimit: boolean,
  ) {
    super(message);
  }
}

export interface Lease {
  /** Gives the bytes back; later calls do nothing. */
  release(): void;
}

export class MemoryBudget {
  private heldBytes = 0;

  constructor(
    /** What the budget holds, for messages: 'request bodies', 'decoded pixels'. */
    readonly name: string,
    readonly limitBytes: number,
  ) {}

  get held(): number {
    return this.heldBytes;
  }

  reserve(bytes: number): Lease {
    if (bytes > this.limitBytes) {
      throw new BudgetError(`${this.name}: ${mib(bytes)} needed, more than the ${mib(this.limitBytes)} the service holds for all requests together`, true);
    }
    if (this.heldBytes + bytes > this.limitBytes) {
      throw new BudgetError(`${this.name}: ${mib(this.heldBytes)} of ${mib(this.limitBytes)} are held by requests in flight and ${mib(bytes)} more do not fit; retry later`, false);
    }
    this.heldBytes += bytes;
    let held = true;
    return {
      release: () => {
        if (held) this.heldBytes -= bytes;
        held = false;
      },
    };
  }
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
