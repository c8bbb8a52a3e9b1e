// The official MobileNetV2 release table (tensorflow/models, research/slim/nets/mobilenet):
// multiply-adds in millions and parameters in millions for the 22 published checkpoints.
import type { GraphCost } from './cost.js';

export interface ReleaseRow {
  alpha: number;
  resolution: number;
  multiplyAddsM: number;
  paramsM: number;
}

// [alpha, params (M), multiply-adds (M) at 224, 192, 160, 128, 96]; 1.4 and 1.3 ship at 224 only.
const ROWS: readonly [number, number, readonly number[]][] = [
  [1.4, 6.06, [582]],
  [1.3, 5.34, [509]],
  [1.0, 3.47, [300, 221, 154, 99, 56]],
  [0.75, 2.61, [209, 153, 107, 69, 39]],
  [0.5, 1.95, [97, 71, 50, 32, 18]],
  [0.35, 1.66, [59, 43, 30, 20, 11]],
];
const RESOLUTIONS = [224, 192, 160, 128, 96];

export const RELEASE_TABLE: readonly ReleaseRow[] = ROWS.flatMap(([alpha, paramsM, macs]) =>
  macs.map((multiplyAddsM, i) => ({ alpha, resolution: RESOLUTIONS[i]!, multiplyAddsM, paramsM })),
);

/**
 * Parameters as the release table counts them: convolution weights and the classifier's bias,
 * without batch-norm parameters (which our folded count carries as one bias per channel).
 */
export function releaseConventionParams(cost: GraphCost, classes: number): number {
  return cost.params - cost.biases + classes;
}
