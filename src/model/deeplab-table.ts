// The paper's segmentation table (Sandler et al. 2018, Table 7: DeepLabv3 on MobileNetV2,
// PASCAL VOC 2012 val) and the two counting conventions behind its figures, which differ from
// ours (see docs/cost-model.md): parameters as TensorFlow's trainable variables, and
// multiply-adds as TensorFlow executes an atrous convolution.
import { costOf } from './cost.js';
import { deepLabV3, strategyMultiplyAdds, STRATEGIES, type DeepLabHead, type Strategy } from './deeplab.js';
import type { Graph } from './graph.js';
import type { OutputStride } from './mobilenet-v2.js';

export interface PaperSegmentationRow {
  outputStride: OutputStride;
  head: DeepLabHead;
  strategy: Strategy;
  mIOU: number;
  paramsM: number;
  multiplyAddsB: number;
}

/** The MobileNetV2 rows ("MNet V2*": heads on the second-last feature map). */
export const PAPER_SEGMENTATION_TABLE: readonly PaperSegmentationRow[] = [
  { outputStride: 16, head: 'aspp', strategy: 'single', mIOU: 75.7, paramsM: 4.52, multiplyAddsB: 5.8 },
  { outputStride: 8, head: 'aspp', strategy: 'mf', mIOU: 78.42, paramsM: 4.52, multiplyAddsB: 387 },
  { outputStride: 16, head: 'lite', strategy: 'single', mIOU: 75.32, paramsM: 2.11, multiplyAddsB: 2.75 },
  { outputStride: 8, head: 'lite', strategy: 'mf', mIOU: 77.33, paramsM: 2.11, multiplyAddsB: 152.6 },
];

/** The paper's figures are those of a 513x513 input, PASCAL's evaluation crop, though it says 512. */
export const PAPER_RESOLUTION = 513;

/**
 * Parameters as TensorFlow counts trainable variables: convolution weights, batch norm's gamma
 * and beta for every convolution that has one (ours carry it folded as one bias per channel),
 * and a real bias for those that have none (`biasLayers`, the logits).
 */
export function trainableParams(graph: Graph, biasLayers: readonly string[]): number {
  let total = 0;
  for (const node of graph.nodes) {
    if (node.kind !== 'conv2d') continue;
    const weights = node.weight.shape.reduce((a, b) => a * b, 1);
    const channels = node.bias.shape[0]!;
    total += weights + (biasLayers.includes(node.name) ? channels : 2 * channels);
  }
  return total;
}

/**
 * Multiply-adds as TensorFlow computes an atrous convolution: SpaceToBatchND pads each side of the
 * map up to a multiple of the rate and the convolution runs on every padded position, so a
 * dilated layer costs ceil(h / rate) x rate by ceil(w / rate) x rate positions instead of h x w.
 */
export function spaceToBatchMultiplyAdds(graph: Graph): number {
  let total = 0;
  for (const node of graph.nodes) {
    if (node.kind !== 'conv2d') continue;
    const [channels, height, width] = node.shape as [number, number, number];
    const [, perGroup, kh, kw] = node.weight.shape as [number, number, number, number];
    const padded = (side: number) => Math.ceil(side / node.dilation) * node.dilation;
    total += channels * padded(height) * padded(width) * perGroup * kh * kw;
  }
  return total;
}

export interface SegmentationCostRow {
  outputStride: OutputStride;
  head: DeepLabHead;
  strategy: Strategy;
  /** Our convention: batch norm folded into one bias per channel. */
  params: number;
  /** The paper's convention: see trainableParams. */
  trainableParams: number;
  /** Our convention (convolutions, every output position once) at 512x512 and at 513x513. */
  multiplyAdds512: number;
  multiplyAdds513: number;
  /** At 513x513, counted as TensorFlow runs atrous convolutions: see spaceToBatchMultiplyAdds. */
  spaceToBatchMultiplyAdds513: number;
  paper?: PaperSegmentationRow;
}

/** Width 1.0, output stride 16 and 8, with and without ASPP, single scale and MF: ours next to the paper. */
export function segmentationCostTable(): SegmentationCostRow[] {
  return ([16, 8] as const).flatMap((outputStride) => (['aspp', 'lite'] as const).flatMap((head) => STRATEGIES.map((strategy) => {
    const config = { alpha: 1, outputStride, head };
    const { graph } = deepLabV3({ ...config, resolution: 512 });
    const at = (resolution: number, count?: (g: Graph) => number) => strategyMultiplyAdds({ ...config, resolution }, strategy, count);
    return {
      outputStride,
      head,
      strategy,
      params: costOf(graph).params,
      trainableParams: trainableParams(graph, ['logits_semantic']),
      multiplyAdds512: at(512),
      multiplyAdds513: at(PAPER_RESOLUTION),
      spaceToBatchMultiplyAdds513: at(PAPER_RESOLUTION, spaceToBatchMultiplyAdds),
      paper: PAPER_SEGMENTATION_TABLE.find((p) => p.outputStride === outputStride && p.head === head && p.strategy === strategy),
    };
  })));
}
