// COCO box detection metrics as pycocotools' COCOeval computes them (iouType 'bbox'): per image
// and category, detections matched greedily by score to ground truth at ten IoU thresholds,
// crowd regions and boxes outside an area range ignored, then precision interpolated at 101
// recall points. Written from COCOeval's algorithm so that the numbers are the field's numbers;
// test/coco-eval.test.ts checks them against pycocotools itself.

/** [x, y, width, height] in pixels, as COCO writes boxes. */
export type CocoBox = [number, number, number, number];

export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
}

export interface CocoCategory {
  id: number;
  name: string;
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: CocoBox;
  /** The object's (segmentation) area, which the area ranges use; not the box's. */
  area: number;
  iscrowd: number;
}

export interface CocoDataset {
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
}

/** One detection in COCO's results format. */
export interface CocoResult {
  image_id: number;
  category_id: number;
  bbox: CocoBox;
  score: number;
}

export interface CocoMetrics {
  /** AP averaged over IoU 0.50:0.05:0.95, all areas, 100 detections per image: "mAP". */
  ap: number;
  ap50: number;
  ap75: number;
  apSmall: number;
  apMedium: number;
  apLarge: number;
  ar1: number;
  ar10: number;
  ar100: number;
  arSmall: number;
  arMedium: number;
  arLarge: number;
  /** AP@[.5:.95] of each category with ground truth; -1 (as COCOeval) where it has none. */
  perCategory: { id: number; name: string; ap: number }[];
}

/** numpy.linspace to the last bit: the recall points and thresholds are compared exactly. */
function linspace(start: number, stop: number, count: number): number[] {
  const step = (stop - start) / (count - 1);
  return Array.from({ length: count }, (_, i) => (i === count - 1 ? stop : i * step + start));
}

export const IOU_THRESHOLDS = linspace(0.5, 0.95, 10);
const RECALL_POINTS = linspace(0, 1, 101);
const MAX_DETECTIONS = [1, 10, 100] as const;
const AREA_RANGES = { all: [0, 1e10], small: [0, 32 ** 2], medium: [32 ** 2, 96 ** 2], large: [96 ** 2, 1e10] } as const;
type AreaName = keyof typeof AREA_RANGES;
const AREAS = Object.keys(AREA_RANGES) as AreaName[];

/** Box IoU as pycocotools' bbIou: a crowd region counts the detection's own area as the union. */
export function boxIou([ax, ay, aw, ah]: CocoBox, [bx, by, bw, bh]: CocoBox, crowd: boolean): number {
  const w = Math.min(ax + aw, bx + bw) - Math.max(ax, bx);
  const h = Math.min(ay + ah, by + bh) - Math.max(ay, by);
  if (w <= 0 || h <= 0) return 0;
  const intersection = w * h;
  const union = crowd ? aw * ah : aw * ah + bw * bh - intersection;
  return intersection / union;
}

interface Detection {
  score: number;
  area: number;
  bbox: CocoBox;
}

/** One image and category under one area range and detection limit: what accumulation needs. */
interface ImageMatch {
  scores: number[];
  /** [threshold][detection]: matched to a ground truth that counts. */
  matched: boolean[][];
  /** [threshold][detection]: neither true nor false positive (matched a crowd or ignored box, or outside the range unmatched). */
  ignored: boolean[][];
  /** Ground truth that counts (not crowd, inside the area range). */
  counted: number;
}

/** Indices sorted by descending score, ties in input order (COCOeval's mergesort). */
const byScore = (scores: readonly number[]) => scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);

function matchImage(gts: CocoAnnotation[], dts: Detection[], [low, high]: readonly [number, number], maxDetections: number): ImageMatch | undefined {
  if (gts.length === 0 && dts.length === 0) return undefined;
  const outside = (area: number) => area < low || area > high;
  // Ground truth that counts first, as COCOeval orders it; a stable sort keeps the file's order within each group.
  const gtIgnored = (g: CocoAnnotation) => g.iscrowd !== 0 || outside(g.area);
  const gt = [...gts.filter((g) => !gtIgnored(g)), ...gts.filter(gtIgnored)];
  const dt = byScore(dts.map((d) => d.score)).slice(0, maxDetections).map((i) => dts[i]!);
  const ious = dt.map((d) => gt.map((g) => boxIou(d.bbox, g.bbox, g.iscrowd !== 0)));
  const matched: boolean[][] = [];
  const ignored: boolean[][] = [];
  for (const threshold of IOU_THRESHOLDS) {
    const taken = new Array<boolean>(gt.length).fill(false);
    const rowMatched = new Array<boolean>(dt.length).fill(false);
    const rowIgnored = new Array<boolean>(dt.length).fill(false);
    dt.forEach((d, di) => {
      let best = Math.min(threshold, 1 - 1e-10);
      let m = -1;
      for (let gi = 0; gi < gt.length; gi++) {
        // A crowd region may match any number of detections; other ground truth only one.
        if (taken[gi] && gt[gi]!.iscrowd === 0) continue;
        // Once matched to ground truth that counts, ignored ground truth cannot take over.
        if (m > -1 && !gtIgnored(gt[m]!) && gtIgnored(gt[gi]!)) break;
        if (ious[di]![gi]! < best) continue;
        best = ious[di]![gi]!;
        m = gi;
      }
      if (m === -1) {
        rowIgnored[di] = outside(d.area);
        return;
      }
      taken[m] = true;
      rowIgnored[di] = gtIgnored(gt[m]!);
      rowMatched[di] = true;
    });
    matched.push(rowMatched);
    ignored.push(rowIgnored);
  }
  return { scores: dt.map((d) => d.score), matched, ignored, counted: gt.filter((g) => !gtIgnored(g)).length };
}

/** Precision at the 101 recall points and the final recall, for one category, area and limit; undefined without ground truth that counts. */
function accumulate(images: ImageMatch[], maxDetections: number): { precision: number[][]; recall: number[] } | undefined {
  const counted = images.reduce((n, e) => n + e.counted, 0);
  if (counted === 0) return undefined;
  const entries = images.flatMap((e, ei) => e.scores.slice(0, maxDetections).map((score, di) => ({ score, ei, di })));
  const order = byScore(entries.map((e) => e.score)).map((i) => entries[i]!);
  const precision: number[][] = [];
  const recall: number[] = [];
  IOU_THRESHOLDS.forEach((_, t) => {
    const rc: number[] = [];
    const pr: number[] = [];
    let tp = 0;
    let fp = 0;
    for (const { ei, di } of order) {
      // An ignored detection is neither a true nor a false positive, but keeps its place in the ranking.
      if (!images[ei]!.ignored[t]![di]) {
        if (images[ei]!.matched[t]![di]) tp++;
        else fp++;
      }
      rc.push(tp / counted);
      pr.push(tp / (tp + fp + Number.EPSILON));
    }
    recall.push(rc.length ? rc.at(-1)! : 0);
    // The precision envelope: at each recall, the best precision at that recall or beyond.
    for (let i = pr.length - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
    precision.push(RECALL_POINTS.map((point) => {
      // The first detection whose recall reaches the point (searchsorted, side left); none: 0.
      let lo = 0;
      let hi = rc.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (rc[mid]! < point) lo = mid + 1;
        else hi = mid;
      }
      return lo < pr.length ? pr[lo]! : 0;
    }));
  });
  return { precision, recall };
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(keyOf(item));
    if (group) group.push(item);
    else groups.set(keyOf(item), [item]);
  }
  return groups;
}

const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : -1);

/** COCO's twelve summary numbers and per-category AP for `results` against `dataset`'s images and categories. */
export function evaluateDetections(dataset: CocoDataset, results: readonly CocoResult[]): CocoMetrics {
  const imageIds = new Set(dataset.images.map((i) => i.id));
  for (const r of results) {
    if (!imageIds.has(r.image_id)) throw new RangeError(`a result names image ${r.image_id}, which the annotations do not have`);
  }
  const categories = [...dataset.categories].sort((a, b) => a.id - b.id);
  const images = [...imageIds].sort((a, b) => a - b);
  const key = (image: number, category: number) => `${image}/${category}`;
  const gtBy = groupBy(dataset.annotations, (a) => key(a.image_id, a.category_id));
  // A result's area is its box's, as COCO.loadRes sets it.
  const dtBy = groupBy(results.map((r) => ({ ...r, area: r.bbox[2] * r.bbox[3] })), (r) => key(r.image_id, r.category_id));

  const matchCache = new Map<string, ImageMatch[]>();
  const matchesOf = (area: AreaName, category: number) => {
    const cached = matchCache.get(`${area}/${category}`);
    if (cached) return cached;
    const matches = images.flatMap((image) => {
      const m = matchImage(gtBy.get(key(image, category)) ?? [], dtBy.get(key(image, category)) ?? [], AREA_RANGES[area], MAX_DETECTIONS.at(-1)!);
      return m ? [m] : [];
    });
    matchCache.set(`${area}/${category}`, matches);
    return matches;
  };
  // [area][limit] -> per category (undefined: no ground truth that counts) precision [t][r] and recall [t].
  const table = new Map<string, ({ precision: number[][]; recall: number[] } | undefined)[]>();
  for (const area of AREAS) {
    for (const limit of MAX_DETECTIONS) {
      table.set(`${area}/${limit}`, categories.map((c) => {
        // As COCOeval: matched once with the largest limit; accumulation takes each image's best `limit`.
        return accumulate(matchesOf(area, c.id), limit);
      }));
    }
  }
  const ap = (area: AreaName, threshold?: number) => mean(table.get(`${area}/100`)!.flatMap((c) => (c ? precisionAt(c.precision, threshold) : [])));
  const ar = (area: AreaName, limit: number) => mean(table.get(`${area}/${limit}`)!.flatMap((c) => (c ? c.recall : [])));
  return {
    ap: ap('all'),
    ap50: ap('all', 0.5),
    ap75: ap('all', 0.75),
    apSmall: ap('small'),
    apMedium: ap('medium'),
    apLarge: ap('large'),
    ar1: ar('all', 1),
    ar10: ar('all', 10),
    ar100: ar('all', 100),
    arSmall: ar('small', 100),
    arMedium: ar('medium', 100),
    arLarge: ar('large', 100),
    perCategory: categories.map((c, i) => {
      const entry = table.get('all/100')![i];
      return { id: c.id, name: c.name, ap: entry ? mean(entry.precision.flat()) : -1 };
    }),
  };
}

/** The precision values at one IoU threshold (all ten when absent). */
function precisionAt(precision: number[][], threshold: number | undefined): number[] {
  if (threshold === undefined) return precision.flat();
  return precision[IOU_THRESHOLDS.findIndex((t) => Math.abs(t - threshold) < 1e-9)]!;
}
