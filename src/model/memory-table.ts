// The MobileNetV2 paper's Table 3 (the largest tensor to materialize at each spatial resolution,
// 16-bit floats) next to what our cost model computes, for the plain schedule and split ones.
import { costOf, memoryByResolution } from './cost.js';
import { mobileNetV2Classifier } from './mobilenet-v2.js';
import { splitGraph } from './split.js';

/**
 * Table 3, MobileNetV2 column, "channels/memory (in Kb)". The figures are channels x side² x
 * 2 bytes in thousands of bytes (16 x 112² x 2 = 401,408 is "400K"), so K is 1000 bytes: neither
 * kilobits nor KiB. The 7x7 entry (320 x 49 x 2 = 31,360) is printed as 32K.
 */
export const PAPER_TABLE3 = [
  { side: 112, channels: 16, kilobytes: 400 },
  { side: 56, channels: 32, kilobytes: 200 },
  { side: 28, channels: 64, kilobytes: 100 },
  { side: 14, channels: 160, kilobytes: 62 },
  { side: 7, channels: 320, kilobytes: 32 },
  { side: 1, channels: 1280, kilobytes: 2 },
] as const;

export const FLOAT16_BYTES = 2;

export interface MemoryRow {
  side: number;
  paper?: { channels: number; kilobytes: number };
  /** Largest bottleneck tensor at this side in our graph: its node, channels and bytes. */
  bottleneck?: { name: string; channels: number; bytes: number };
  /** Largest live set while a layer of this side runs, per split factor (same order as `splits`). */
  live: { bytes: number; layer: string }[];
}

export interface MemoryTable {
  splits: number[];
  bytesPerElement: number;
  rows: MemoryRow[];
  /** Whole-network peak per split factor. */
  peaks: number[];
}

/** MobileNetV2 (classifier) memory per resolution under each split factor; 1 = the plain schedule. */
export function memoryTable(alpha: number, resolution: number, splits: readonly number[], bytesPerElement = FLOAT16_BYTES): MemoryTable {
  const { graph } = mobileNetV2Classifier({ alpha, resolution });
  const schedules = splits.map((k) => {
    const split = splitGraph(graph, k);
    const cost = costOf(split, bytesPerElement);
    return { cost, bySide: new Map(memoryByResolution(split, cost).map((m) => [m.side, m])) };
  });
  const plain = memoryByResolution(graph, costOf(graph, bytesPerElement));
  const rows = plain.map(({ side, bottleneck, bottleneckBytes }): MemoryRow => ({
    side,
    paper: resolution === 224 ? PAPER_TABLE3.find((p) => p.side === side) : undefined,
    bottleneck: bottleneck ? { name: bottleneck, channels: bottleneckBytes / bytesPerElement / side / side, bytes: bottleneckBytes } : undefined,
    live: schedules.map(({ bySide }) => ({ bytes: bySide.get(side)!.liveBytes, layer: bySide.get(side)!.liveLayer })),
  }));
  return { splits: [...splits], bytesPerElement, rows, peaks: schedules.map((s) => s.cost.peakActivationBytes) };
}
