// The Open Inference Protocol over gRPC (inference.GRPCInferenceService), a second front-end on
// its own port. It shares the HTTP service's pipeline, and with it admission, memory budgets,
// the pool and the metrics; each call gets a request lifetime from its gRPC deadline (bounded as
// X-Request-Timeout-Ms is) and ends it early when the client cancels. On shutdown it stops taking
// calls, brings the deadlines of those in flight forward to the drain, and waits for them.
import { fileURLToPath } from 'node:url';
import {
  Server, ServerCredentials, loadPackageDefinition, status,
  type GrpcObject, type sendUnaryData, type ServerUnaryCall, type ServiceClientConstructor, type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Metrics } from '../metrics/metrics.js';
import { infer } from '../oip/infer.js';
import { modelMetadata, resolveModel, serverMetadata, type GrpcMethod } from '../oip/metadata.js';
import type { ImagePipeline } from '../pipeline/image-pipeline.js';
import { DeadlineExceededError, RequestLifetime } from '../pipeline/lifetime.js';
import { UnknownModelError, type ModelRegistry } from '../pipeline/models.js';
import { inferRequestOf, inferResponseOf, type ModelInferRequest } from './messages.js';
import { grpcFailureOf, type GrpcFailure } from './status.js';

const PROTO = fileURLToPath(new URL('./inference.proto', import.meta.url));

/** Failures worth a warning in the log, as the HTTP side warns of its 5xx and cancelled requests. */
const SERVER_SIDE: readonly status[] = [status.DEADLINE_EXCEEDED, status.CANCELLED, status.RESOURCE_EXHAUSTED, status.UNAVAILABLE, status.INTERNAL];

export interface GrpcOptions {
  host: string;
  /** 0 takes any free port (tests); the one bound is in the result. */
  port: number;
  pipeline: ImagePipeline;
  models: ModelRegistry;
  metrics: Metrics;
  /** pino's shape: the service's logger. */
  log: { warn(details: object, message: string): void; error(details: object, message: string): void };
  /** Whether the service takes inference now (not loading, not draining). */
  ready(): boolean;
  /** REQUEST_TIMEOUT_MS for a call without a deadline, MAX_REQUEST_TIMEOUT_MS for the longest. */
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** BODY_LIMIT_BYTES: the largest message taken. */
  maxMessageBytes: number;
}

export interface GrpcServer {
  port: number;
  /** Stops taking calls, ends those in flight within `drainMs` (their deadlines come forward), then resolves. */
  drain(drainMs: number): Promise<void>;
  /** Cuts whatever is still open. */
  cut(): void;
}

function serviceDefinition() {
  const definition = loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const inference = (loadPackageDefinition(definition) as GrpcObject).inference as GrpcObject;
  return (inference.GRPCInferenceService as ServiceClientConstructor).service;
}

/** The lifetime of a call: its deadline, or the default, bounded by the longest allowed; the client cancelling ends it. */
function lifetimeOf(call: ServerUnaryCall<unknown, unknown>, options: GrpcOptions): RequestLifetime {
  const deadline = call.getDeadline();
  const due = deadline instanceof Date ? deadline.getTime() : deadline;
  const timeoutMs = Number.isFinite(due) ? Math.max(1, Math.min(due - Date.now(), options.maxTimeoutMs)) : options.defaultTimeoutMs;
  const lifetime = new RequestLifetime(Math.round(timeoutMs));
  call.once('cancelled', () => lifetime.clientLeft());
  return lifetime;
}

/** The size of a ModelInfer message's tensors: what the call holds while it runs (the body budget's share). */
const tensorBytes = (message: ModelInferRequest) =>
  message.raw_input_contents.reduce((sum, b) => sum + b.length, 0) +
  message.inputs.reduce((sum, i) => sum + (i.contents?.bytes_contents ?? []).reduce((s, b) => s + b.length, 0) + 4 * (i.contents?.fp32_contents.length ?? 0), 0);

export async function startGrpcServer(options: GrpcOptions): Promise<GrpcServer> {
  const { pipeline, models, metrics, log } = options;
  const live = new Set<RequestLifetime>();

  /** A unary handler: its answer or its failure, counted and timed; unknown errors are INTERNAL and logged. */
  const unary = <Req, Res>(method: GrpcMethod, handle: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const timer = metrics.grpcDuration.startTimer({ grpc_method: method });
      const finish = (code: status) => {
        metrics.grpcHandled.inc({ grpc_method: method, grpc_code: status[code] });
        timer();
      };
      handle(call.request, call).then(
        (response) => {
          finish(status.OK);
          callback(null, response);
        },
        (err: unknown) => {
          const known = grpcFailureOf(err);
          const failure: GrpcFailure = known ?? { code: status.INTERNAL, details: 'internal error; see the service log' };
          if (!known) log.error({ err, grpcMethod: method }, 'gRPC call failed');
          else if (SERVER_SIDE.includes(failure.code)) log.warn({ grpcMethod: method, grpcCode: status[failure.code] }, failure.details);
          finish(failure.code);
          callback({ code: failure.code, details: failure.details, metadata: failure.metadata });
        },
      );
    };

  const implementation: UntypedServiceImplementation = {
    ServerLive: unary('ServerLive', async () => ({ live: true })),
    ServerReady: unary('ServerReady', async () => ({ ready: options.ready() })),
    ModelReady: unary('ModelReady', async ({ name, version }: { name: string; version: string }) => {
      try {
        resolveModel(models, name, version);
      } catch (err) {
        if (err instanceof UnknownModelError) return { ready: false };
        throw err;
      }
      return { ready: options.ready() };
    }),
    ServerMetadata: unary('ServerMetadata', async () => serverMetadata('grpc')),
    ModelMetadata: unary('ModelMetadata', async ({ name, version }: { name: string; version: string }) => modelMetadata(resolveModel(models, name, version))),
    ModelInfer: unary('ModelInfer', async (message: ModelInferRequest, call) => {
      const startedAt = performance.now();
      const lifetime = lifetimeOf(call, options);
      live.add(lifetime);
      // The message is already in memory: admission and the body budget are taken at once, and
      // a refusal lets it go.
      let reservation, lease;
      try {
        reservation = pipeline.admit();
        lease = pipeline.reserveBody(tensorBytes(message));
        const model = resolveModel(models, message.model_name, message.model_version);
        return inferResponseOf(await infer(pipeline, model, inferRequestOf(message), { lifetime, reservation, startedAt }));
      } catch (err) {
        // A deadline or a cancel that came first is the answer, whatever failed after it.
        const ended = lifetime.endedBy;
        if (!ended) throw err;
        (ended instanceof DeadlineExceededError ? metrics.deadlineExceeded : metrics.clientDisconnects).inc({ stage: ended.stage });
        throw ended;
      } finally {
        reservation?.release();
        lease?.release();
        lifetime.end();
        live.delete(lifetime);
      }
    }),
  };

  const server = new Server({ 'grpc.max_receive_message_length': options.maxMessageBytes });
  server.addService(serviceDefinition(), implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });

  return {
    port,
    drain: (drainMs) => new Promise<void>((resolve) => {
      for (const lifetime of live) lifetime.shorten(drainMs, `the shutdown's drain of ${drainMs} ms`);
      server.tryShutdown(() => resolve());
    }),
    cut: () => server.forceShutdown(),
  };
}
