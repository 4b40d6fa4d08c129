/**
 * Typed errors shared by the registry, the functions and the CLI. Handlers map them to HTTP
 * statuses; the CLI maps them to one line and a non-zero exit. Each carries the underlying
 * `cause` for logs, never for callers.
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

/** The model could not be loaded and no earlier version is being served. */
export class ModelUnavailableError extends AiaasError {
  override readonly name: string = 'ModelUnavailableError';
  override readonly status = 503;
}

/** A model or dataset that does not fit what the manifest or the runtime can handle. */
export class ConfigurationError extends AiaasError {
  override readonly name: string = 'ConfigurationError';
  override readonly status = 500;
}
