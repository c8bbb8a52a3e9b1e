// The protocol extensions this server supports, as server metadata lists them (REST `GET /v2`,
// gRPC ServerMetadata). One list for both front-ends: an extension added here is announced by
// both, except those of one transport only.
export const EXTENSIONS: readonly string[] = [
  // Tensors as bytes after the JSON (Inference-Header-Content-Length, binary_data_size, binary_data).
  'binary_tensor_data',
  // `classification: k` on an output: its k best classes as "score:index:label" strings.
  'classification',
];

/** Served over REST only: Triton's model repository extension (/v2/repository/...; needs ADMIN_TOKEN). */
export const REST_EXTENSIONS: readonly string[] = [...EXTENSIONS, 'model_repository'];
