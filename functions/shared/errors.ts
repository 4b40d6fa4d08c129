/**
 * Typed errors shared by the registry, the functions and the CLI. `errorAnswer` maps them to HTTP
 * (the one place that does); the CLI maps them to one line and a non-zero exit. Each carries the
 * underlying `cause` for logs, never for callers.
 */
export class AiaasError extends Error {
  // Spelled out in each class, not taken from the constructor: the bundles are minified, and a log
  // line saying `"error": "D"` helps nobody.
  override readonly name: string = 'AiaasError';
  /** HTTP status a handler should answer with when this error reaches it. */
  readonly status: number = 500;
}

/** A name, version or alias from a request or the CLI that does not fit the registry layout. */
export class InvalidNameError extends AiaasError {
  override readonly name: string = 'InvalidNameError';
  override readonly status = 400;
}

/** Input that does not fit the model's signature or the API. */
export class ValidationError extends AiaasError {
  override readonly name: string = 'ValidationError';
  override readonly status = 400;
}

export class PayloadTooLargeError extends AiaasError {
  override readonly name: string = 'PayloadTooLargeError';
  override readonly status = 413;
}

export class MethodNotAllowedError extends AiaasError {
  override readonly name: string = 'MethodNotAllowedError';
  override readonly status = 405;
  constructor(
    message: string,
    readonly allow: readonly string[],
  ) {
    super(message);
  }
}

/** A model, version, alias or route that does not exist. */
export class NotFoundError extends AiaasError {
  override readonly name: string = 'NotFoundError';
  override readonly status = 404;
}

/** A compare-and-swap lost to a concurrent writer, or an expectation about the current state failed. */
export class ConflictError extends AiaasError {
  override readonly name: string = 'ConflictError';
  override readonly status = 409;
}

/** Stored bytes do not match their recorded sha256, or a stored document does not parse. */
export class IntegrityError extends AiaasError {
  override readonly name: string = 'IntegrityError';
  override readonly status = 500;
}

/** The registry (S3) cannot be reached or answered with a server error; retrying later may help. */
export class RegistryUnavailableError extends AiaasError {
  override readonly name: string = 'RegistryUnavailableError';
  override readonly status = 503;
}

/**
 * The model could not be loaded and no earlier version is being served. Its message is shown to
 * callers: it names the model, alias or version and what to do, never the registry (bucket,
 * endpoint, S3 error), whose details go in `cause` for the log.
 */
export class ModelUnavailableError extends AiaasError {
  override readonly name: string = 'ModelUnavailableError';
  override readonly status = 503;
}

/** A model or dataset that does not fit what the manifest or the runtime can handle. */
export class ConfigurationError extends AiaasError {
  override readonly name: string = 'ConfigurationError';
  override readonly status = 500;
}

/** An error as an HTTP answer: what anyone calling the function may read. */
export interface ErrorAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly message: string;
}

/** Seconds a client should wait before retrying a 503. */
export const RETRY_AFTER_SECONDS = 2;

/**
 * Maps an error to its HTTP answer. A 4xx tells the caller what is wrong with the request (those
 * messages are written for the caller and name only the request's parts). A 5xx gives a generic
 * reason and the request id, never the error's own text: that can name the bucket, the account,
 * the endpoint or S3's error code, and a function with `auth: NONE` answers anyone. The details
 * are for the log, under the same request id. ModelUnavailableError keeps its message, which is
 * written for callers (see its class).
 */
export function errorAnswer(error: unknown, requestId?: string): ErrorAnswer {
  const status = error instanceof AiaasError ? error.status : 500;
  const headers: Record<string, string> = {};
  if (error instanceof MethodNotAllowedError) headers.allow = error.allow.join(', ');
  if (status === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS);
  if (status < 500) return { status, headers, message: (error as AiaasError).message };
  const reason =
    error instanceof ModelUnavailableError
      ? error.message
      : error instanceof RegistryUnavailableError
        ? 'The model registry is unavailable; retry later'
        : error instanceof ConfigurationError
          ? "The function is misconfigured; see the function's logs"
          : "Internal error; see the function's logs";
  return { status, headers, message: requestId ? `${reason} (request ${requestId})` : reason };
}
