// Semantic segmentation metrics as DeepLab's evaluation computes them (tf.metrics.mean_iou over
// the whole dataset): one confusion matrix accumulated over every labelled pixel of every image,
// then each class's IoU = true positives / (true + false positives + false negatives), and mIoU
// the mean over the classes that occur at all (in the labels or the predictions). Not a mean of
// per-image IoUs, which weights a small image as much as a large one.

/** The label value of pixels that count for nothing (object boundaries, unlabelled regions). */
export const IGNORE_LABEL = 255;

export class ConfusionMatrix {
  /** counts[label * classes + predicted]. */
  readonly counts: Float64Array;

  constructor(readonly classes: number) {
    this.counts = new Float64Array(classes * classes);
  }

  /** Adds one image: `labels` and `predicted` hold a class id per pixel, in the same order. */
  add(labels: ArrayLike<number>, predicted: ArrayLike<number>): void {
    if (labels.length !== predicted.length) throw new RangeError(`${labels.length} labels but ${predicted.length} predictions`);
    const { classes, counts } = this;
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i]!;
      if (label === IGNORE_LABEL) continue;
      const guess = predicted[i]!;
      if (label >= classes || guess >= classes) throw new RangeError(`pixel ${i}: class ${label >= classes ? label : guess} is not below ${classes}`);
      counts[label * classes + guess]!++;
    }
  }
}

export interface SegmentationMetrics {
  mIoU: number;
  /** Per class; undefined for a class that neither the labels nor the predictions contain. */
  iou: (number | undefined)[];
  pixelAccuracy: number;
  /** Labelled pixels counted (ignore label excluded). */
  pixels: number;
}

export function segmentationMetrics({ classes, counts }: ConfusionMatrix): SegmentationMetrics {
  const iou: (number | undefined)[] = [];
  let diagonal = 0;
  let total = 0;
  for (let c = 0; c < classes; c++) {
    let labelled = 0;
    let predicted = 0;
    for (let k = 0; k < classes; k++) {
      labelled += counts[c * classes + k]!;
      predicted += counts[k * classes + c]!;
    }
    const hits = counts[c * classes + c]!;
    const union = labelled + predicted - hits;
    iou.push(union > 0 ? hits / union : undefined);
    diagonal += hits;
    total += labelled;
  }
  const valid = iou.filter((v): v is number => v !== undefined);
  return {
    mIoU: valid.length ? valid.reduce((a, b) => a + b, 0) / valid.length : 0,
    iou,
    pixelAccuracy: total ? diagonal / total : 0,
    pixels: total,
  };
}
