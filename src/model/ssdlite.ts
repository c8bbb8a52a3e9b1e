// SSDLite on MobileNetV2 (paper, section 6.2): SSD whose extra feature layers and box predictors
// use separable convolutions. Names follow the TF Object Detection API so weight files map on.
import { GraphBuilder, type Graph } from './graph.js';
import { addBackbone, validateConfig } from './mobilenet-v2.js';

/** Depths of the four extra feature layers, each reached by a stride-2 3x3 layer. */
export const EXTRA_LAYER_DEPTHS = [512, 256, 256, 128] as const;
/** The expansion of bottleneck 13 (the paper's 15th layer): output stride 16, 576 channels at width 1. */
export const FIRST_FEATURE_MAP = 'block_13_expand';
export const BOX_CODE_SIZE = 4;

export interface SsdConfig {
  alpha: number;
  resolution: number;
  /** Class logits per anchor, background included (COCO: 90 ids + background = 91). */
  classes: number;
  /** 'separable' is SSDLite; 'regular' uses 3x3 convolutions as the original SSD does. */
  predictor: 'separable' | 'regular';
}

/** Anchor shapes per feature map, SSD style: scales 0.2..0.95, aspect ratios 1, 2, 1/2, 3, 1/3
 * (written 0.3333 as in the released pipeline config, so anchors match the trained ones exactly). */
export const ANCHOR_SPEC = { minScale: 0.2, maxScale: 0.95, aspectRatios: [1, 2, 0.5, 3, 0.3333] } as const;

/** [scale, aspect ratio] of each anchor of feature map `layer` out of `layers`. */
export function anchorBoxSpecs(layer: number, layers: number): [number, number][] {
  const { minScale, maxScale, aspectRatios } = ANCHOR_SPEC;
  const scale = (i: number) => (i === layers ? 1 : minScale + ((maxScale - minScale) * i) / (layers - 1));
  // The lowest layer has three anchors, the smallest of them at scale 0.1.
  if (layer === 0) return [[0.1, 1], [scale(0), 2], [scale(0), 0.5]];
  return [
    ...aspectRatios.map((ratio): [number, number] => [scale(layer), ratio]),
    // One more square anchor between this layer's scale and the next one's.
    [Math.sqrt(scale(layer) * scale(layer + 1)), 1],
  ];
}

/** Anchors as [yCenter, xCenter, height, width] rows, in the order the predictors emit them. */
export function ssdAnchors(featureMaps: readonly [number, number][]): Float32Array {
  const rows: number[] = [];
  featureMaps.forEach(([height, width], layer) => {
    const specs = anchorBoxSpecs(layer, featureMaps.length);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (const [scale, ratio] of specs) {
          rows.push((y + 0.5) / height, (x + 0.5) / width, scale / Math.sqrt(ratio), scale * Math.sqrt(ratio));
        }
      }
    }
  });
  return Float32Array.from(rows);
}

/**
 * A 3x3 layer as SSDLite writes it (depthwise + batch norm + ReLU6, then 1x1) or as SSD does
 * (one regular 3x3 convolution).
 */
function addSpatialLayer(
  g: GraphBuilder,
  name: string,
  input: string,
  options: { out: number; stride: number; activation: 'relu6' | 'none' },
  predictor: SsdConfig['predictor'],
): string {
  const { out, stride, activation } = options;
  if (predictor === 'regular') return g.conv2d(name, input, { out, kernel: 3, stride, activation });
  const [channels] = g.shapeOf(input) as [number];
  const depthwise = g.conv2d(`${name}_depthwise`, input, { out: channels, kernel: 3, stride, groups: 'depthwise', activation: 'relu6' });
  return g.conv2d(name, depthwise, { out, activation });
}

/**
 * Outputs: `box_encodings` [anchors, 4] and `class_scores` [anchors, classes] after sigmoid.
 * The anchors follow from the graph's feature map sizes (anchorLayoutOf, ssdAnchors).
 */
export function ssdMobileNetV2(config: SsdConfig): Graph {
  const { alpha, resolution } = validateConfig({ alpha: config.alpha, resolution: config.resolution });
  const g = new GraphBuilder(`ssd${config.predictor === 'separable' ? 'lite' : ''}_mobilenet_v2_${alpha.toFixed(2)}_${resolution}`);
  const input = g.input('input', [3, resolution, resolution]);
  const featureMaps = [FIRST_FEATURE_MAP, addBackbone(g, input, alpha)];

  EXTRA_LAYER_DEPTHS.forEach((depth, i) => {
    const previous = featureMaps.at(-1)!;
    const reduce = g.conv2d(`layer_19_1_Conv2d_${i + 2}_1x1_${depth / 2}`, previous, { out: depth / 2, activation: 'relu6' });
    featureMaps.push(addSpatialLayer(g, `layer_19_2_Conv2d_${i + 2}_3x3_s2_${depth}`, reduce, { out: depth, stride: 2, activation: 'relu6' }, config.predictor));
  });

  const anchorsPerCell = featureMaps.map((_, layer) => anchorBoxSpecs(layer, featureMaps.length).length);
  const predictions = (head: 'BoxEncodingPredictor' | 'ClassPredictor', perAnchor: number) =>
    featureMaps.map((map, i) => {
      const [, height, width] = g.shapeOf(map) as [number, number, number];
      const anchors = height * width * anchorsPerCell[i]!;
      const raw = addSpatialLayer(g, `BoxPredictor_${i}/${head}`, map, { out: anchorsPerCell[i]! * perAnchor, stride: 1, activation: 'none' }, config.predictor);
      // [anchors x perAnchor, h, w] -> rows of one anchor each, in TensorFlow's (y, x, anchor) order.
      const hwc = g.transpose(`BoxPredictor_${i}/${head}/hwc`, raw, [1, 2, 0]);
      return g.reshape(`BoxPredictor_${i}/${head}/rows`, hwc, [anchors, perAnchor]);
    });
  const boxes = g.concat('box_encodings', predictions('BoxEncodingPredictor', BOX_CODE_SIZE));
  const logits = g.concat('class_logits', predictions('ClassPredictor', config.classes));
  return g.build([boxes, g.sigmoid('class_scores', logits)]);
}

/** Feature map sizes of a detector graph, read from the inputs of its box predictors. */
export function anchorLayoutOf(graph: Graph): [number, number][] {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const sizes: [number, number][] = [];
  for (let i = 0; byName.has(`BoxPredictor_${i}/BoxEncodingPredictor`); i++) {
    let node = byName.get(`BoxPredictor_${i}/BoxEncodingPredictor`)!;
    // Step back over SSDLite's depthwise half to the feature map itself.
    if (byName.has(`BoxPredictor_${i}/BoxEncodingPredictor_depthwise`)) node = byName.get(`BoxPredictor_${i}/BoxEncodingPredictor_depthwise`)!;
    sizes.push(byName.get(node.inputs[0]!)!.shape.slice(1) as [number, number]);
  }
  if (sizes.length === 0) throw new Error(`graph ${graph.name} has no box predictors`);
  return sizes;
}
