// What test/client/calls.ts reports. Its own file, free of the generated client, so that
// test/client.test.ts can use it under the root type-check, which runs before the client exists.
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
}
