// Our COCO box metrics (src/eval/coco.ts) against pycocotools' COCOeval on the same ground truth
// and detections: synthetic cases built to reach every rule (crowd regions, images and classes
// without detections or ground truth, duplicates and ties, area ranges, more than 100 detections)
// and a seeded random set mixing them all.
import { describe, expect, it } from 'vitest';
import { evaluateDetections, type CocoAnnotation, type CocoBox, type CocoDataset, type CocoResult } from '../src/eval/coco.js';
import { random } from './helpers.js';
import { differenceFromPycocotools } from './pycocotools.js';

let nextId = 1;
const gt = (image_id: number, category_id: number, bbox: CocoBox, extra: Partial<CocoAnnotation> = {}): CocoAnnotation => ({
  id: nextId++, image_id, category_id, bbox, area: bbox[2] * bbox[3], iscrowd: 0, ...extra,
});
const dt = (image_id: number, category_id: number, bbox: CocoBox, score: number): CocoResult => ({ image_id, category_id, bbox, score });
const dataset = (imageCount: number, categoryCount: number, annotations: CocoAnnotation[]): CocoDataset => ({
  images: Array.from({ length: imageCount }, (_, i) => ({ id: i + 1, file_name: `${i + 1}.jpg`, width: 640, height: 480 })),
  categories: Array.from({ length: categoryCount }, (_, i) => ({ id: i + 1, name: `c${i + 1}` })),
  annotations,
});

const TOLERANCE = 1e-3;

describe('COCO box metrics against pycocotools', () => {
  it('crowd regions: any number of detections inside one are ignored, not false positives; IoU against a crowd is over the detection', () => {
    const annotations = [
      gt(1, 1, [100, 100, 200, 200], { iscrowd: 1 }),
      gt(1, 1, [10, 10, 50, 50]),
      gt(2, 1, [300, 200, 80, 60]),
      gt(2, 1, [0, 0, 640, 480], { iscrowd: 1 }),
    ];
    const results = [
      dt(1, 1, [110, 110, 50, 50], 0.9), dt(1, 1, [150, 150, 60, 60], 0.8), dt(1, 1, [12, 12, 48, 50], 0.7), dt(1, 1, [400, 50, 30, 30], 0.95),
      dt(2, 1, [305, 205, 75, 55], 0.6), dt(2, 1, [20, 300, 50, 50], 0.85),
    ];
    const { worst, ours } = differenceFromPycocotools(dataset(2, 1, annotations), results);
    expect(worst).toBeLessThan(TOLERANCE);
    // Not vacuous: two false positives rank first, so precision is below 1.
    expect(ours.ap50).toBeGreaterThan(0.3);
    expect(ours.ap50).toBeLessThan(1);
  });

  it('images and classes without detections, a class without ground truth (left out of the mean), duplicates and tied scores', () => {
    const annotations = [
      gt(1, 1, [50, 50, 100, 100]), gt(1, 2, [200, 200, 40, 40]), gt(2, 1, [10, 20, 300, 200]),
      gt(3, 2, [5, 5, 20, 20]), gt(3, 1, [400, 300, 100, 80]),
    ];
    const results = [
      // Duplicates of one object: one true positive, the rest false, at tied scores.
      dt(1, 1, [52, 50, 98, 100], 0.8), dt(1, 1, [50, 52, 100, 98], 0.8), dt(1, 1, [51, 51, 99, 99], 0.8),
      dt(2, 1, [15, 25, 290, 195], 0.8),
      // Class 3 has no ground truth anywhere: its detections count for nothing.
      dt(1, 3, [0, 0, 50, 50], 0.99), dt(2, 3, [100, 100, 50, 50], 0.5),
      // Image 3 and class 2 have no detections at all.
    ];
    const { worst, ours } = differenceFromPycocotools(dataset(3, 3, annotations), results);
    expect(worst).toBeLessThan(TOLERANCE);
    expect(ours.perCategory.find((c) => c.id === 3)!.ap).toBe(-1);
    expect(ours.perCategory.find((c) => c.id === 2)!.ap).toBe(0);
  });

  it('area ranges use the annotation\'s area, not its box\'s; over 100 detections an image keeps its best 100', () => {
    const annotations = [
      // A large box whose object is small (area from the segmentation), and the reverse.
      gt(1, 1, [0, 0, 200, 200], { area: 500 }), gt(1, 1, [300, 300, 20, 20], { area: 10000 }), gt(1, 1, [500, 10, 30, 30]),
    ];
    const results = [dt(1, 1, [0, 0, 200, 190], 0.9), dt(1, 1, [300, 300, 20, 21], 0.8), dt(1, 1, [500, 10, 30, 28], 0.7)];
    for (let i = 0; i < 150; i++) results.push(dt(1, 1, [i * 3, 400, 10, 10], 0.5 - i / 1000));
    // The last true positive ranks below 100 other detections: only the 100 limit can reach it.
    results.push(dt(1, 1, [500, 11, 30, 29], 0.01));
    const { worst, ours } = differenceFromPycocotools(dataset(1, 1, annotations), results);
    expect(worst).toBeLessThan(TOLERANCE);
    expect(ours.apSmall).not.toBe(ours.apLarge);
  });

  it('a seeded random set of 40 images, 6 classes, crowds, jittered boxes and false positives', () => {
    const rand = random(13);
    const annotations: CocoAnnotation[] = [];
    const results: CocoResult[] = [];
    for (let image = 1; image <= 40; image++) {
      const objects = Math.floor(rand() * 8);
      for (let k = 0; k < objects; k++) {
        const size = 8 + rand() * 250;
        const box: CocoBox = [rand() * 400, rand() * 300, size * (0.5 + rand()), size * (0.5 + rand())];
        const category = 1 + Math.floor(rand() * 5);
        annotations.push(gt(image, category, box, { iscrowd: rand() < 0.05 ? 1 : 0, area: box[2] * box[3] * (0.4 + 0.6 * rand()) }));
        const copies = rand() < 0.8 ? 1 + Math.floor(rand() * 3) : 0;
        for (let c = 0; c < copies; c++) {
          const jitter = () => (rand() - 0.5) * 0.4 * size;
          results.push(dt(image, rand() < 0.9 ? category : 6, [box[0] + jitter(), box[1] + jitter(), box[2] + jitter(), box[3] + jitter()], Math.round(rand() * 20) / 20));
        }
      }
      for (let k = Math.floor(rand() * 4); k > 0; k--) results.push(dt(image, 1 + Math.floor(rand() * 6), [rand() * 500, rand() * 400, 5 + rand() * 100, 5 + rand() * 100], rand() * 0.6));
    }
    const { worst, ours } = differenceFromPycocotools(dataset(40, 6, annotations), results);
    console.log(`random set: mAP ${ours.ap.toFixed(4)}, AP50 ${ours.ap50.toFixed(4)}; largest difference from pycocotools ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(TOLERANCE);
  });

  it('no detections at all: every class with ground truth scores 0 (pycocotools cannot load an empty list)', () => {
    const metrics = evaluateDetections(dataset(2, 2, [gt(1, 1, [0, 0, 10, 10]), gt(2, 2, [0, 0, 100, 100])]), []);
    expect([metrics.ap, metrics.ar100, metrics.apSmall, metrics.apLarge]).toEqual([0, 0, 0, 0]);
    // No medium objects: undefined, as COCOeval reports -1.
    expect(metrics.apMedium).toBe(-1);
  });

  it('refuses results for images the annotations do not have', () => {
    expect(() => evaluateDetections(dataset(1, 1, []), [dt(7, 1, [0, 0, 1, 1], 0.5)])).toThrow(/image 7/);
  });
});
