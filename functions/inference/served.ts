/**
 * What one function serves (the alias's live version, and a canary and a shadow when the alias
 * carries them), and what it answers for a route: status, metadata or a prediction. Pure apart
 * from the executors' predict and the injected random draw. A predict request is answered by the
 * canary or the live version as routing.ts decides; status and metadata by the live version; a
 * route naming a version by that version if it is the live or the canary one, else a 404 that says
 * what is served. After a sampled answer is computed the shadow runs on the same input (shadow.ts).
 * An error thrown once a version was chosen carries that version (`choiceOf`), for the answer's
 * header and the metrics.
 */

import { monotonicMs } from '../shared/clock.js';
import { NotFoundError } from '../shared/errors.js';
import type { VersionMetadata } from '../shared/registry/types.js';
import type { VersionRole } from '../shared/rollout/figures.js';
import { metadataResponse, predictResponse, statusResponse } from './answers.js';
import type { Executor } from './executor.js';
import { openApiDocument } from './openapi.js';
import { type Limits, parsePredictRequest } from './predict-request.js';
import type { Route } from './routes.js';
import { choosesCanary, sampled } from './routing.js';
import type { ShadowOutcome, ShadowRunner } from './shadow.js';

/** One loaded version. */
export interface Served {
  readonly version: number;
  /** The alias pointer's etag it was loaded from: the next re-check reads only a changed pointer. */
  readonly etag: string;
  readonly executor: Executor;
  readonly metadata: VersionMetadata;
}

/** Everything one function serves for its alias. */
export interface ServedSet {
  /** The alias pointer's etag this set was made from (a re-check reads only a changed pointer). */
  readonly etag: string;
  readonly live: Served;
  readonly canary: { readonly served: Served; readonly weight: number } | undefined;
  readonly shadow: { readonly runner: ShadowRunner<Served>; readonly sample: number } | undefined;
  /**
   * A canary or shadow of the pointer could not be read (the registry failed): the next re-check
   * reads the pointer whole again, even unchanged, to retry it.
   */
  readonly incomplete?: boolean;
}

/** What a route answers, before HTTP framing. */
export interface ServiceResult {
  readonly status: number;
  readonly body: unknown;
  /** The version that answered. */
  readonly version?: number;
  /** Its role in the alias (predict answers). */
  readonly role?: VersionRole;
  /** What the shadow did, on a sampled predict request. */
  readonly shadow?: ShadowOutcome;
}

/** Who serves: the function's model and alias, its request limits and its random draw. */
export interface ServedBy {
  readonly model: string;
  readonly alias: string;
  readonly limits: Limits;
  /** Uniform in [0, 1): routes un-keyed requests and samples the shadow. */
  readonly random: () => number;
  readonly now?: () => number;
}

/** The version chosen for a request that then failed. */
export interface Choice {
  readonly version: number;
  readonly role: VersionRole;
}

const CHOICE = Symbol('aiaas.choice');

/** The version chosen for the request that threw `error`, if one was. */
export function choiceOf(error: unknown): Choice | undefined {
  return typeof error === 'object' && error !== null
    ? ((error as { [CHOICE]?: Choice })[CHOICE] ?? undefined)
    : undefined;
}

function chosen(error: unknown, version: number, role: VersionRole): unknown {
  if (typeof error === 'object' && error !== null) {
    try {
      Object.defineProperty(error, CHOICE, { value: { version, role }, configurable: true });
    } catch {
      // A frozen error object: it goes on without the version.
    }
  }
  return error;
}

/**
 * The answer `set` gives to `route` (`body`: a predict request's text; `routeKey`: the request's
 * routing key, if any). Throws typed errors.
 */
export function answerFrom(
  set: ServedSet,
  route: Route,
  body: string,
  by: ServedBy,
  routeKey?: string,
): ServiceResult {
  let served = set.live;
  let role: VersionRole = 'live';
  const canary = set.canary;
  if (route.version !== undefined) {
    if (route.version !== served.version) {
      if (canary === undefined || route.version !== canary.served.version) {
        const also = canary ? ` and canary version ${canary.served.version}` : '';
        throw new NotFoundError(
          `Version ${route.version} of "${by.model}" is not served; alias "${by.alias}" serves version ${served.version}${also}`,
        );
      }
      served = canary.served;
      role = 'canary';
    }
  } else if (
    canary !== undefined &&
    route.kind === 'predict' &&
    choosesCanary(canary.weight, routeKey, by.random)
  ) {
    served = canary.served;
    role = 'canary';
  }
  if (route.label !== undefined && route.label !== by.alias) {
    throw new NotFoundError(
      `Label "${route.label}" is not served here; this function serves alias "${by.alias}"`,
    );
  }
  switch (route.kind) {
    case 'status':
      return {
        status: 200,
        body: statusResponse(served.version, 'AVAILABLE'),
        version: served.version,
        role,
      };
    case 'metadata':
      return {
        status: 200,
        version: served.version,
        role,
        body: metadataResponse(by.model, served.version, served.executor.signature, {
          alias: by.alias,
          runtime: served.executor.runtime,
          created_at: served.metadata.createdAt,
          source: served.metadata.source,
          metrics: served.metadata.metrics,
          parent: served.metadata.parent,
        }),
      };
    case 'openapi':
      return {
        status: 200,
        version: served.version,
        role,
        body: openApiDocument({
          model: by.model,
          alias: by.alias,
          version: served.version,
          signature: served.executor.signature,
          limits: by.limits,
        }),
      };
    case 'predict':
      return predictFrom(set, served, role, body, by);
  }
}

/** A predict answer from `served` (chosen as `role`), then the shadow on a sampled request. */
function predictFrom(
  set: ServedSet,
  served: Served,
  role: VersionRole,
  body: string,
  by: ServedBy,
): ServiceResult {
  const shadow = set.shadow;
  try {
    if (shadow === undefined || !sampled(shadow.sample, by.random)) {
      const request = parsePredictRequest(body, served.executor.signature, by.limits);
      const outputs = served.executor.predict(request.inputs);
      return {
        status: 200,
        version: served.version,
        role,
        body: predictResponse(request, outputs, by.model, served.version),
      };
    }
    // Sampled: the answer is computed (and timed, for the shadow's budget), then the shadow runs.
    const now = by.now ?? monotonicMs;
    const started = now();
    const request = parsePredictRequest(body, served.executor.signature, by.limits);
    const outputs = served.executor.predict(request.inputs);
    const answer = predictResponse(request, outputs, by.model, served.version);
    const answerMs = now() - started;
    const outcome = shadow.runner.run(request, body, served.executor, outputs, answerMs, by.limits);
    return { status: 200, version: served.version, role, body: answer, shadow: outcome };
  } catch (error) {
    throw chosen(error, served.version, role);
  }
}
