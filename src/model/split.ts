// Memory-efficient inference (MobileNetV2 paper, section 5.1): an inverted-residual block
// F(x) = project(depthwise(expand(x))) is a sum over k slices of its expanded channels,
//   F(x) = sum_i project_i(depthwise_i(expand_i(x))),
// because expansion, batch norm, ReLU6 and the depthwise conv act on each channel alone and the
// projection is linear. Run slice by slice, only a 1/k slice of the expanded tensor is ever live.
// This is a rewrite of the graph description (and of its weights), so every engine runs it.
import { elementCount, isDepthwise, readerSteps, type Conv2dOp, type Graph, type Node, type Weights } from './graph.js';

type Conv = Node<Conv2dOp>;

/** An expand -> depthwise -> linear project chain whose inner tensors nothing else reads. */
export interface SplittableBlock {
  expand: Conv;
  depthwise: Conv;
  project: Conv;
  /** Channels of the expanded tensor. */
  hidden: number;
}

const isConv = (node: Node | undefined): node is Conv => node?.kind === 'conv2d';
/** Any full convolution: each output channel (each slice of them) is computed on its own. */
const isFull = (node: Conv) => node.groups === 1;

/**
 * Blocks the rewrite may split, found by structure rather than by name: a full convolution read
 * only by a depthwise conv, read only by a full convolution without activation (the linear
 * bottleneck: partial projections sum to the projection only before any non-linearity). The
 * expansions are 1x1, except in the first block, where the stride-2 3x3 Conv1 plays that part:
 * splitting it too is the paper's remark on the first layer. A block whose expansion is also a
 * feature map (SSDLite reads block_13_expand) must stay whole.
 */
export function splittableBlocks(graph: Graph): SplittableBlock[] {
  const readers = readerSteps(graph);
  const onlyReader = (name: string) => {
    const steps = readers.get(name) ?? [];
    return steps.length === 1 && !graph.outputs.includes(name) ? graph.nodes[steps[0]!] : undefined;
  };
  const blocks: SplittableBlock[] = [];
  for (const expand of graph.nodes) {
    if (!isConv(expand) || !isFull(expand)) continue;
    const depthwise = onlyReader(expand.name);
    if (!isConv(depthwise) || !isDepthwise(depthwise)) continue;
    const project = onlyReader(depthwise.name);
    // A 1x1 projection: its weight's columns are the expanded channels the slices divide.
    if (!isConv(project) || !isFull(project) || project.kernel !== 1 || project.activation !== 'none') continue;
    blocks.push({ expand, depthwise, project, hidden: expand.shape[0]! });
  }
  return blocks;
}

/** [start, end) channel ranges of k near-equal slices of n channels (sizes differ by at most one). */
export function sliceRanges(n: number, k: number): [number, number][] {
  return Array.from({ length: k }, (_, i) => [Math.floor((i * n) / k), Math.floor(((i + 1) * n) / k)]);
}

function checkFactor(graph: Graph, k: number, blocks: readonly SplittableBlock[]): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`split factor ${k} must be a positive integer`);
  const narrowest = blocks.reduce<SplittableBlock | undefined>((min, b) => (min && min.hidden <= b.hidden ? min : b), undefined);
  if (narrowest && k > narrowest.hidden) {
    throw new RangeError(`split factor ${k} exceeds the ${narrowest.hidden} expanded channels of ${narrowest.expand.name} in ${graph.name}`);
  }
}

const sliceName = (node: Node, i: number) => `${node.name}/slice${i}`;

function slicedConv(node: Conv, i: number, input: string, inChannels: number, outChannels: number): Conv {
  const name = sliceName(node, i);
  const groups = node.groups === 1 ? 1 : outChannels;
  return {
    ...node,
    name,
    inputs: [input],
    shape: [outChannels, ...node.shape.slice(1)],
    groups,
    weight: { name: `${name}/weight`, shape: [outChannels, inChannels / groups, node.kernel, node.kernel] },
    bias: { name: `${name}/bias`, shape: [outChannels] },
  };
}

/** The nodes that replace one block: k slices, each followed by a running sum, the last one named as the projection was. */
function splitBlock({ expand, depthwise, project, hidden }: SplittableBlock, k: number): Node[] {
  const [inChannels] = expand.weight.shape.slice(1) as [number];
  const out = project.shape[0]!;
  const nodes: Node[] = [];
  let sum: string | undefined;
  sliceRanges(hidden, k).forEach(([start, end], i) => {
    const size = end - start;
    const e = slicedConv(expand, i, expand.inputs[0]!, inChannels, size);
    const d = slicedConv(depthwise, i, e.name, size, size);
    const p = slicedConv(project, i, d.name, size, out);
    nodes.push(e, d, p);
    if (sum !== undefined) {
      const name = i === k - 1 ? project.name : `${project.name}/sum${i}`;
      nodes.push({ kind: 'add', name, inputs: [sum, p.name], shape: project.shape });
      sum = name;
    } else {
      sum = p.name;
    }
  });
  return nodes;
}

/**
 * The graph with every splittable block computed in k slices (1 returns the graph itself). Node
 * names outside the blocks, the inputs and the outputs are unchanged; each block's running sum
 * ends in a node named after its projection, so whatever read the projection still does.
 */
export function splitGraph(graph: Graph, k: number): Graph {
  const blocks = splittableBlocks(graph);
  checkFactor(graph, k, blocks);
  if (k === 1 || blocks.length === 0) return graph;
  const dropped = new Set(blocks.flatMap((b) => [b.expand.name, b.depthwise.name]));
  const byProject = new Map(blocks.map((b) => [b.project.name, b]));
  // The slices take the projection's place: everything they read (the block input) comes earlier.
  const nodes = graph.nodes.flatMap((node) => {
    if (dropped.has(node.name)) return [];
    const block = byProject.get(node.name);
    return block ? splitBlock(block, k) : [node];
  });
  return { ...graph, name: `${graph.name}_split${k}`, nodes };
}

/** Rows [start, end) of a [rows, ...] tensor stored row-major. */
function rows(values: Float32Array, rowSize: number, start: number, end: number): Float32Array {
  return values.slice(start * rowSize, end * rowSize);
}

/** Columns [start, end) of every row of a [rows, columns] matrix (a 1x1 conv's input channels). */
function columns(values: Float32Array, columnCount: number, start: number, end: number): Float32Array {
  const rowCount = values.length / columnCount;
  const out = new Float32Array(rowCount * (end - start));
  for (let r = 0; r < rowCount; r++) out.set(values.subarray(r * columnCount + start, r * columnCount + end), r * (end - start));
  return out;
}

/**
 * Weights for splitGraph(graph, k): expansion and depthwise rows and projection columns per
 * slice. The projection bias goes to slice 0 alone and the others get zeros, so the sum adds it
 * exactly once. Parameters outside the blocks are shared, not copied.
 */
export function splitWeights(graph: Graph, weights: Weights, k: number): Weights {
  const blocks = splittableBlocks(graph);
  checkFactor(graph, k, blocks);
  if (k === 1 || blocks.length === 0) return weights;
  const get = (name: string) => {
    const values = weights.get(name);
    if (!values) throw new Error(`no weights for ${name}`);
    return values;
  };
  const out = new Map(weights);
  for (const { expand, depthwise, project, hidden } of blocks) {
    for (const node of [expand, depthwise, project]) {
      out.delete(node.weight.name);
      out.delete(node.bias.name);
    }
    const perRow = (node: Conv) => elementCount(node.weight.shape.slice(1));
    sliceRanges(hidden, k).forEach(([start, end], i) => {
      for (const node of [expand, depthwise]) {
        out.set(`${sliceName(node, i)}/weight`, rows(get(node.weight.name), perRow(node), start, end));
        out.set(`${sliceName(node, i)}/bias`, get(node.bias.name).slice(start, end));
      }
      out.set(`${sliceName(project, i)}/weight`, columns(get(project.weight.name), hidden, start, end));
      out.set(`${sliceName(project, i)}/bias`, i === 0 ? get(project.bias.name) : new Float32Array(project.shape[0]!));
    });
  }
  return out;
}
