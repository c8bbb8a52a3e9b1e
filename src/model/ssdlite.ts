// SSDLite on MobileNetV2 (paper, section 6.2): SSD whose extra feature layers and box predictors
// use separable convolutions. Names follow the TF Object Detection API so weight files map on.
import { GraphBuilder, type BuiltGraph, type Tensor } from './graph.js';
import { addBackbone, validateConfig, type Backbone } from './mobilenet-v2.js';

/** Depths of the four extra feature layers, each reached by a stride-2 3x3 layer. */
export const EXTRA_LAYER_DEPTHS = [512, 256, 256, 128] as const;
export const BOX_CODE_SIZE = 4;

/**
 * SSDLite's first feature map (paper, section 6.2): the expansion of the block that takes the
 * network from output stride 16 to 32 (block 13, the paper's 15th layer; 576 channels at width 1).
 */
function firstFeatureMap(backbone: Backbone): Tensor {
  const block = backbone.blocks.find((b) => b.inputStride === 16 && b.stride === 2);
  if (!block?.expand) throw new Error('the backbone has no expanded block at output stride 16');
  return block.expand;
}

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
export function ssdAnchors(featureMaps: readonly Tensor[]): Float32Array {
  const rows: number[] = [];
  featureMaps.forEach((map, layer) => {
    const [, height, width] = map.shape as [number, number, number];
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

/** The detector with the handles post-processing needs. */
export interface SsdGraph extends BuiltGraph {
  /** Class logits per anchor, background (0) included. */
  readonly classes: number;
  /** The six maps the box predictors read, [c, h, w]: the anchors follow from their sizes. */
  readonly featureMaps: readonly Tensor[];
  /** [anchors, 4] box encodings and [anchors, classes] scores after the sigmoid. */
  readonly boxEncodings: Tensor;
  readonly classScores: Tensor;
  /** What the paper calls the prediction layers: the nodes of the extra feature layers and the box predictors. */
  readonly predictionLayers: readonly string[];
}

/** SSD on MobileNetV2; the anchors follow from the feature maps (ssdAnchors). */
export function ssdMobileNetV2(config: SsdConfig): SsdGraph {
  const { alpha, resolution } = validateConfig({ alpha: config.alpha, resolution: config.resolution });
  const g = new GraphBuilder(`ssd${config.predictor === 'separable' ? 'lite' : ''}_mobilenet_v2_${alpha.toFixed(2)}_${resolution}`);
  const input = g.input('input', [3, resolution, resolution]);
  const backbone = addBackbone(g, input, alpha);
  const featureMaps = [firstFeatureMap(backbone).name, backbone.output.name];
  const headStart = g.size;

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
  const boxRows = predictions('BoxEncodingPredictor', BOX_CODE_SIZE);
  const classRows = predictions('ClassPredictor', config.classes);
  const headEnd = g.size;
  const boxes = g.concat('box_encodings', boxRows);
  const scores = g.sigmoid('class_scores', g.concat('class_logits', classRows));
  const graph = g.build([boxes, scores]);
  return {
    graph,
    input: g.tensor(input),
    classes: config.classes,
    featureMaps: featureMaps.map((name) => g.tensor(name)),
    boxEncodings: g.tensor(boxes),
    classScores: g.tensor(scores),
    predictionLayers: graph.nodes.slice(headStart, headEnd).map((n) => n.name),
  };
}
