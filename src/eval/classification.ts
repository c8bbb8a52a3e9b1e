// Classification accuracy: top-1 and top-5 over labelled images, accuracy per class, and the
// (true, predicted) pairs most often wrong. Classes are the dataset's own ids; a model with one
// output more than the dataset has classes is taken to put background at 0 (the TF-slim 1001
// convention), which `ClassMapping` makes explicit rather than guessed per image.

/** How the dataset's class ids map onto a model's outputs. */
export class ClassMapping {
  /** Model output index of dataset class 0. */
  readonly offset: number;

  constructor(readonly datasetClasses: number, readonly modelClasses: number) {
    this.offset = modelClasses - datasetClasses;
    if (this.offset !== 0 && this.offset !== 1) {
      throw new RangeError(
        `the labels use ${datasetClasses} classes and the model has ${modelClasses} outputs; ` +
          'only the same count, or one more output for a background class at 0, can be mapped',
      );
    }
  }

  /** The dataset class of a model output, or undefined for the background output. */
  toDataset(modelIndex: number): number | undefined {
    const id = modelIndex - this.offset;
    return id >= 0 && id < this.datasetClasses ? id : undefined;
  }
}

export interface ClassificationMetrics {
  images: number;
  top1: number;
  top5: number;
  /** Per dataset class that has images: how many, and the share right at top-1. */
  perClass: { classId: number; images: number; top1: number }[];
  /** The most frequent (true, top-1 predicted) pairs that are wrong, most frequent first; predicted undefined = background. */
  confusions: { label: number; predicted: number | undefined; count: number }[];
}

export class ClassificationTally {
  private readonly rows: { label: number; ranked: (number | undefined)[] }[] = [];

  constructor(readonly mapping: ClassMapping) {}

  /** One image: its dataset class and the model's output indices, most probable first (at least five). */
  add(label: number, rankedOutputs: readonly number[]): void {
    if (!Number.isInteger(label) || label < 0 || label >= this.mapping.datasetClasses) {
      throw new RangeError(`label ${label} is not a class id below ${this.mapping.datasetClasses}`);
    }
    this.rows.push({ label, ranked: rankedOutputs.map((i) => this.mapping.toDataset(i)) });
  }

  metrics(topConfusions = 10): ClassificationMetrics {
    const { rows } = this;
    const hitAt = (k: number) => rows.filter((r) => r.ranked.slice(0, k).includes(r.label)).length / (rows.length || 1);
    const classes = new Map<number, { images: number; right: number }>();
    const pairs = new Map<string, { label: number; predicted: number | undefined; count: number }>();
    for (const { label, ranked } of rows) {
      const entry = classes.get(label) ?? { images: 0, right: 0 };
      entry.images++;
      if (ranked[0] === label) entry.right++;
      else {
        const key = `${label}/${ranked[0]}`;
        const pair = pairs.get(key) ?? { label, predicted: ranked[0], count: 0 };
        pair.count++;
        pairs.set(key, pair);
      }
      classes.set(label, entry);
    }
    return {
      images: rows.length,
      top1: hitAt(1),
      top5: hitAt(5),
      perClass: [...classes].sort(([a], [b]) => a - b).map(([classId, { images, right }]) => ({ classId, images, top1: right / images })),
      confusions: [...pairs.values()].sort((a, b) => b.count - a.count || a.label - b.label).slice(0, topConfusions),
    };
  }
}
