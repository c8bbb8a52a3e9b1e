import * as ort from 'onnxruntime-node';
import type { Graph, Weights } from '../../model/graph.js';
import type { Engine, EngineOptions, InputBatch } from '../engine.js';
import { emitOnnx, onnxInputName } from './emit.js';

export class OnnxEngine implements Engine {
  readonly name = 'onnx' as const;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly inputShape: readonly number[],
  ) {}

  static async load(graph: Graph, weights: Weights, options: EngineOptions): Promise<OnnxEngine> {
    if (graph.inputs.length !== 1) throw new Error(`graph ${graph.name}: the ONNX engine takes one input`);
    const session = await ort.InferenceSession.create(emitOnnx(graph, weights, { quantization: options.quantization }), {
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      enableCpuMemArena: options.keepActivationMemory ?? true,
      enableMemPattern: options.keepActivationMemory ?? true,
      ...(options.optimizedModelPath ? { optimizedModelFilePath: options.optimizedModelPath } : {}),
    });
    const [c, h, w] = graph.nodes.find((n) => n.name === graph.inputs[0])!.shape as [number, number, number];
    return new OnnxEngine(session, onnxInputName(graph.inputs[0]!), [h, w, c]);
  }

  async run({ data, batch }: InputBatch): Promise<Map<string, Float32Array>> {
    const input = new ort.Tensor('float32', data, [batch, ...this.inputShape]);
    const results = await this.session.run({ [this.inputName]: input });
    input.dispose();
    const outputs = new Map<string, Float32Array>();
    for (const name of this.session.outputNames) {
      const tensor = results[name]!;
      outputs.set(name, tensor.data as Float32Array);
    }
    return outputs;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
