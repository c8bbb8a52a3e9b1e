// Every refusal the API makes: an HTTP status and a stable machine code, documented in openapi.yaml.
export const ERROR_CODES = {
  invalid_request: 400,
  empty_body: 400,
  invalid_multipart: 400,
  unknown_model: 400,
  cancelled: 400,
  not_found: 404,
  body_too_large: 413,
  image_too_large: 413,
  unsupported_media_type: 415,
  invalid_image: 422,
  image_too_small: 422,
  queue_full: 503,
  not_ready: 503,
  worker_failed: 503,
  deadline_exceeded: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class ApiError extends Error {
  readonly statusCode: number;
  constructor(readonly code: ErrorCode, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
    this.statusCode = ERROR_CODES[code];
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export const errorBody = (code: ErrorCode, message: string): ErrorBody => ({ error: { code, message } });
