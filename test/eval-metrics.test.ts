// Segmentation and classification metrics against hand computations.
import { describe, expect, it } from 'vitest';
import { ClassificationTally, ClassMapping } from '../src/eval/classification.js';
import { ConfusionMatrix, segmentationMetrics } from '../src/eval/segmentation.js';

describe('mIoU from a confusion matrix over the dataset', () => {
  it('equals the hand computation, ignores 255 and leaves absent classes out of the mean', () => {
    const matrix = new ConfusionMatrix(4);
    // Rows: label 0 -> predicted 0, 1; label 1 -> 1, 1; label 2 -> 0; the 255 pixel counts for nothing.
    matrix.add(Uint8Array.of(0, 0, 1, 1, 2, 255), Uint8Array.of(0, 1, 1, 1, 0, 2));
    // IoU 0 = 1 / (2 + 2 - 1), IoU 1 = 2 / (2 + 3 - 2), IoU 2 = 0 / (1 + 0 - 0); class 3 never occurs.
    let m = segmentationMetrics(matrix);
    expect(m.iou).toEqual([1 / 3, 2 / 3, 0, undefined]);
    expect(m.mIoU).toBeCloseTo(1 / 3, 12);
    expect(m.pixelAccuracy).toBeCloseTo(3 / 5, 12);
    expect(m.pixels).toBe(5);

    // A second image, all class 1 and right: the matrix accumulates (IoU 1 = 6 / (6 + 7 - 6));
    // a mean of per-image mIoUs would give (1/3 + 1) / 2 instead.
    matrix.add(Uint8Array.of(1, 1, 1, 1), Uint8Array.of(1, 1, 1, 1));
    m = segmentationMetrics(matrix);
    expect(m.iou[1]).toBeCloseTo(6 / 7, 12);
    expect(m.mIoU).toBeCloseTo((1 / 3 + 6 / 7 + 0) / 3, 12);
    expect(m.pixelAccuracy).toBeCloseTo(7 / 9, 12);
  });

  it('refuses images of different sizes and class ids past the matrix', () => {
    const matrix = new ConfusionMatrix(3);
    expect(() => matrix.add(Uint8Array.of(0, 1), Uint8Array.of(0))).toThrow(/2 labels but 1/);
    expect(() => matrix.add(Uint8Array.of(0, 3), Uint8Array.of(0, 0))).toThrow(/class 3/);
  });
});

describe('top-k accuracy with an explicit label convention', () => {
  it('maps 1000 dataset classes onto 1001 outputs with background at 0, and counts background as wrong', () => {
    const mapping = new ClassMapping(1000, 1001);
    expect([mapping.toDataset(0), mapping.toDataset(1), mapping.toDataset(1000)]).toEqual([undefined, 0, 999]);
    const tally = new ClassificationTally(mapping);
    tally.add(0, [1, 2, 3, 4, 5]); // right
    tally.add(5, [7, 6, 1, 2, 3]); // top-5 only (output 6 is class 5)
    tally.add(5, [0, 8, 9, 10, 11]); // wrong, background first
    tally.add(9, [7, 8, 9, 10, 11]); // wrong at top-1 (class 6), right at top-5 (output 10)
    const m = tally.metrics();
    expect([m.images, m.top1, m.top5]).toEqual([4, 1 / 4, 3 / 4]);
    expect(m.perClass).toEqual([{ classId: 0, images: 1, top1: 1 }, { classId: 5, images: 2, top1: 0 }, { classId: 9, images: 1, top1: 0 }]);
    expect(m.confusions).toEqual([
      { label: 5, predicted: 6, count: 1 },
      { label: 5, predicted: undefined, count: 1 },
      { label: 9, predicted: 6, count: 1 },
    ]);
  });

  it('refuses conventions it cannot map and labels outside the dataset', () => {
    expect(() => new ClassMapping(1000, 1002)).toThrow(/1000 classes and the model has 1002/);
    expect(new ClassMapping(1000, 1000).toDataset(0)).toBe(0);
    expect(() => new ClassificationTally(new ClassMapping(1000, 1001)).add(1000, [1])).toThrow(/label 1000/);
  });
});
