/**
 * A loaded version, and what it answers for a route: status, metadata or a prediction. Pure apart
 * from the executor's predict. A route naming another version or label than the one served is a
 * 404 that says what is served instead.
 */
import { NotFoundError } from '../shared/errors.js';
import type { VersionMetadata } from '../shared/registry/types.js';
import { metadataResponse, predictResponse, statusResponse } from './answers.js';
import type { Executor } from './executor.js';
import { type Limits, parsePredictRequest } from './predict-request.js';
import type { Route } from './routes.js';

/** One loaded version. */
export interface Served {
  readonly version: number;
  /** The alias pointer's etag it was loaded from: the next re-check reads only a changed pointer. */
  readonly etag: string;
  readonly executor: Executor;
  readonly metadata: VersionMetadata;
}

/** What a route answers, before HTTP framing. */
export interface ServiceResult {
  readonly status: number;
  readonly body: unknown;
  readonly version?: number;
}

/** Who serves: the function's model and alias, and its request limits. */
export interface ServedBy {
  readonly model: string;
  readonly alias: string;
  readonly limits: Limits;
}

/** The answer `served` gives to `route` (`body`: a predict request's text). Throws typed errors. */
export function answerFrom(served: Served, route: Route, body: string, by: ServedBy): ServiceResult {
  if (route.version !== undefined && route.version !== served.version) {
    throw new NotFoundError(
      `Version ${route.version} of "${by.model}" is not served; alias "${by.alias}" serves version ${served.version}`,
    );
  }
  if (route.label !== undefined && route.label !== by.alias) {
    throw new NotFoundError(
      `Label "${route.label}" is not served here; this function serves alias "${by.alias}"`,
    );
  }
  switch (route.kind) {
    case 'status':
      return { status: 200, body: statusResponse(served.version, 'AVAILABLE'), version: served.version };
    case 'metadata':
      return {
        status: 200,
        version: served.version,
        body: metadataResponse(by.model, served.version, served.executor.signature, {
          alias: by.alias,
          runtime: served.executor.runtime,
          created_at: served.metadata.createdAt,
          source: served.metadata.source,
          metrics: served.metadata.metrics,
          parent: served.metadata.parent,
        }),
      };
    case 'predict': {
      const request = parsePredictRequest(body, served.executor.signature, by.limits);
      const outputs = served.executor.predict(request.inputs);
      return {
        status: 200,
        version: served.version,
        body: predictResponse(request, outputs, by.model, served.version),
      };
    }
  }
}
