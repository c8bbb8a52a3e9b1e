// What test/client/calls.ts and test/hey-api/calls.ts report. Its own file, free of the generated
// clients, so that test/client.test.ts can use it under the root type-check, which runs before
// the clients exist; the answers are typed by their shape, so either client's types fit.
export interface Outcome {
  /** `METHOD /path` of every call made, as the document names the path. */
  called: string[];
  topClass: string;
  multipartTopClass: string;
  detected: string[];
  detectionPicture: { type: string; bytes: number };
  segmented: string[];
  maskBytes: number;
  embeddingDimensions: number;
  /** The Open Inference Protocol's routes: health statuses, metadata, top class of each infer route. */
  v2: { health: number[]; extensions: string[]; inputs: string[]; sameVersioned: boolean; topClasses: string[] };
  models: { name: string; task: string }[];
  health: string;
  ready: string;
  metrics: string;
  /** The error codes of the refused calls, with their statuses. */
  errors: { status: number; code: string }[];
  /** Management: the models the index lists as ready, the version a reload served, what was unloaded. */
  readyModels: string[];
  reloaded: string;
  unloaded: string;
}

interface Labelled {
  label: string;
}

/** The answers every client gets from the routes, once narrowed to their JSON or Blob. */
export interface Answers {
  called: string[];
  classified: { predictions: Labelled[] };
  multipart: { predictions: Labelled[] };
  detected: { detections: Labelled[] };
  picture: Blob;
  segmented: { legend: Labelled[] };
  mask: Blob;
  embedded: { dimensions: number };
  models: { models: { name: string; task: string }[] };
  health: { status: string };
  ready: { status: string };
  metrics: string;
  v2: {
    health: number[];
    server: { extensions: string[] };
    metadata: { inputs: { name: string }[] };
    versioned: unknown;
    /** The answers of the two infer routes. */
    inferred: { outputs: { data?: unknown[] }[] }[];
  };
  errors: { status: number; code: string }[];
  management: { index: { name: string }[]; reload: { version: string }; unload: { name: string } };
}

export function outcomeOf(a: Answers): Outcome {
  return {
    called: a.called,
    topClass: a.classified.predictions[0]!.label,
    multipartTopClass: a.multipart.predictions[0]!.label,
    detected: a.detected.detections.map((d) => d.label),
    detectionPicture: { type: a.picture.type, bytes: a.picture.size },
    segmented: a.segmented.legend.map((entry) => entry.label),
    maskBytes: a.mask.size,
    embeddingDimensions: a.embedded.dimensions,
    v2: {
      health: a.v2.health,
      extensions: a.v2.server.extensions,
      inputs: a.v2.metadata.inputs.map((i) => i.name),
      sameVersioned: JSON.stringify(a.v2.versioned) === JSON.stringify(a.v2.metadata),
      topClasses: a.v2.inferred.map((r) => String(r.outputs[0]!.data![0])),
    },
    models: a.models.models.map(({ name, task }) => ({ name, task })),
    health: a.health.status,
    ready: a.ready.status,
    metrics: a.metrics,
    errors: a.errors,
    readyModels: a.management.index.map((entry) => entry.name),
    reloaded: a.management.reload.version,
    unloaded: a.management.unload.name,
  };
}
