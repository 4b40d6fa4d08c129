import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigurationError } from './errors.js';
import { NAME_PATTERN } from './registry/layout.js';

/**
 * The manifest of models: one file (`models/manifest.json`) read by the CDK app, the local stack,
 * the retraining function and the CLI, so a model is declared once.
 */

const name = z
  .string()
  .regex(NAME_PATTERN, 'must be 1-63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit');

const layerSchema = z.strictObject({
  type: z.literal('dense'),
  units: z.number().int().positive(),
  activation: z.enum(['relu', 'sigmoid', 'softmax', 'tanh', 'linear', 'elu', 'selu']).default('linear'),
});

/**
 * A web origin as browsers send it (`https://demo.example.com`, `http://localhost:5173`): scheme,
 * host, optional port; no path, no trailing slash, no wildcard.
 */
const ORIGIN =
  /^https?:\/\/(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/;

const origin = z
  .string()
  .refine((value) => !value.includes('*'), {
    message:
      '"*" is refused: list the web origins allowed to call this public model from a browser (e.g. "https://demo.example.com"); "*" would let any website call it from its visitors\' browsers, on your bill',
  })
  .refine((value) => value.includes('*') || ORIGIN.test(value), {
    message: 'must be an origin: http(s)://host[:port] in lower case, without a path or a trailing "/"',
  });

const definitionSchema = z.strictObject({
  /** Column names of the CSV features, in model input order. */
  features: z.array(z.string().min(1)).min(1),
  /** Column name of the label. */
  label: z.string().min(1),
  /** Bake per-feature standardization (training-set mean and std) into the model as a frozen first layer. */
  standardize: z.boolean().default(true),
  layers: z.array(layerSchema).min(1),
  compile: z.strictObject({
    optimizer: z.enum(['adam', 'sgd', 'rmsprop']).default('adam'),
    learningRate: z.number().positive().default(0.001),
    loss: z
      .enum(['binaryCrossentropy', 'meanSquaredError', 'categoricalCrossentropy'])
      .default('binaryCrossentropy'),
    metrics: z.array(z.string()).default(['accuracy']),
  }),
  fit: z.strictObject({
    epochs: z.number().int().positive().max(10_000),
    batchSize: z.number().int().positive().default(32),
    validationSplit: z.number().gt(0).lt(1).default(0.2),
    seed: z.number().int().default(42),
  }),
  gate: z
    .strictObject({
      metric: z.string().default('val_accuracy'),
      /** The candidate must beat the live version by at least this much. */
      minImprovement: z.number().default(0),
      /** ...or, when negative differences are tolerated, lose by at most this much. */
      maxRegression: z.number().min(0).default(0),
      /**
       * What a passing candidate gets: `promote` moves the alias to it at once; `rollout` makes it
       * the canary at the first step of the model's `rollout` plan (required then), and the
       * rollout function steps it up, promotes or aborts it by its figures. @default 'promote'
       */
      onPass: z.enum(['promote', 'rollout']).optional(),
    })
    .default({ metric: 'val_accuracy', minImprovement: 0, maxRegression: 0 }),
});

/**
 * A rollout plan: how a canary is stepped up by the rollout function (functions/shared/rollout/
 * decide.ts). Each step lasts at least `stepMinutes` and `minRequests` canary requests; the canary
 * is aborted when its error rate exceeds the live version's by more than `maxErrorRateIncrease`,
 * or its p99 latency exceeds `maxP99Ratio` times the live version's. The last step is 100: reaching
 * it promotes the canary.
 */
export const rolloutSchema = z.strictObject({
  /** Canary weights in percent, ascending, ending at 100 (promotion). */
  steps: z
    .array(z.number().gt(0, 'each step must be above 0 %').max(100, 'each step must be at most 100 %'))
    .min(1)
    .max(20)
    .refine((steps) => steps.every((s, i) => i === 0 || s > steps[i - 1]!), {
      message: 'must be strictly ascending percentages (e.g. [10, 50, 100])',
    })
    .refine((steps) => steps.at(-1) === 100, {
      message: 'must end at 100 (the step that promotes the canary)',
    })
    .default([10, 50, 100]),
  /** Least time a step lasts before the next. */
  stepMinutes: z.number().gt(0).max(1440).default(10),
  /** Least canary requests in a step before it may pass (fewer: the rollout waits). */
  minRequests: z.number().int().min(1).max(1_000_000).default(100),
  /** Largest tolerated canary error rate minus the live one's, absolute (0.01: one point). */
  maxErrorRateIncrease: z.number().min(0).max(1).default(0.01),
  /** Largest tolerated canary p99 latency over the live one's. */
  maxP99Ratio: z.number().min(1, 'must be at least 1 (the canary as fast as live)').default(1.5),
  /** How often the rollout function looks (EventBridge Scheduler expression). */
  schedule: z
    .string()
    .regex(/^(rate|cron)\(.+\)$/, 'must be an EventBridge rate(...) or cron(...) expression')
    .default('rate(1 minute)'),
});

export type RolloutPlan = z.output<typeof rolloutSchema>;

/** The inference function's memory when the manifest entry does not say. */
export const DEFAULT_MEMORY_MIB = 1024;

const modelSchema = z
  .strictObject({
    name,
    description: z.string().optional(),
    alias: name.default('live'),
    runtime: z.enum(['wasm', 'native']).default('wasm'),
    /** `auto`: small dense models are served without tfjs (functions/shared/model/fast-path.ts). */
    fastPath: z.enum(['auto', 'off']).default('auto'),
    memoryMiB: z.number().int().min(128).max(10_240).default(DEFAULT_MEMORY_MIB),
    timeoutSeconds: z.number().int().min(1).max(900).default(30),
    /**
     * Concurrency reserved for (and capping) the inference function. Unset by default: reserving
     * takes it from the account's pool whether used or not (see README, Configuration).
     */
    reservedConcurrency: z.number().int().min(1).optional(),
    provisionedConcurrency: z.number().int().min(0).default(0),
    auth: z.enum(['AWS_IAM', 'NONE']).default('AWS_IAM'),
    cors: z
      .strictObject({
        allowOrigins: z.array(origin).min(1).max(100),
        allowHeaders: z.array(z.string()).optional(),
        maxAgeSeconds: z.number().int().min(0).optional(),
      })
      .optional(),
    aliasCheckSeconds: z.number().int().min(1).max(3600).default(60),
    retrain: z
      .strictObject({
        schedule: z
          .string()
          .regex(/^(rate|cron)\(.+\)$/, 'must be an EventBridge rate(...) or cron(...) expression'),
        datasetPrefix: z.string().optional(),
        timeoutSeconds: z.number().int().min(60).max(900).default(900),
        memoryMiB: z.number().int().min(128).max(10_240).default(2048),
        /**
         * Concurrency reserved for the retraining function: 1 makes runs never overlap. Unset by
         * default, like the inference function's, so an account that can reserve nothing still
         * deploys; overlapping runs are safe (each publishes its own intact version, and each
         * promotion is a compare-and-swap).
         */
        reservedConcurrency: z.number().int().min(1).optional(),
      })
      .optional(),
    /**
     * Batch jobs over data in S3 (`aiaas batch`): a Step Functions Distributed Map for the model
     * (infra/constructs/batch-job.ts). Absent: no state machine is deployed (the local stack runs
     * jobs with these defaults). `maxConcurrency`: batches scored at once (each a Lambda
     * invocation; 10 fits a new account's concurrency quota); `rowsPerBatch`: rows per invocation
     * (a batch is also cut at 240 KiB, under Step Functions' 256 KiB payload limit);
     * `toleratedFailurePercent`: share of rows in batches that failed as a whole (after retries)
     * the job tolerates before it fails. A malformed row never counts: it lands in the failures.
     */
    batch: z
      .strictObject({
        maxConcurrency: z.number().int().min(1).max(10_000).default(10),
        rowsPerBatch: z.number().int().min(1).max(10_000).default(500),
        toleratedFailurePercent: z.number().min(0).max(100).default(0),
      })
      .optional(),
    definition: definitionSchema.optional(),
    /** Canary rollouts of this model (see rolloutSchema); absent: canaries are only moved by hand. */
    rollout: rolloutSchema.optional(),
  })
  .superRefine((m, ctx) => {
    if (m.definition?.gate.onPass === 'rollout' && !m.rollout) {
      ctx.addIssue({
        code: 'custom',
        path: ['definition', 'gate', 'onPass'],
        message: '"rollout" needs a "rollout" plan for the model (e.g. "rollout": {"steps": [10, 50, 100]})',
      });
    }
    if (m.cors && m.auth !== 'NONE') {
      ctx.addIssue({
        code: 'custom',
        path: ['cors'],
        message: 'CORS is only for auth "NONE" (IAM-signed calls come from servers)',
      });
    }
    if (m.auth === 'NONE') {
      // Anyone on the internet may call a public URL: its browser origins and its cost are bounded
      // explicitly, never by default.
      if (!m.cors) {
        ctx.addIssue({
          code: 'custom',
          path: ['cors'],
          message:
            'required with auth "NONE": list the web origins allowed to call the model ("allowOrigins")',
        });
      }
      if (m.reservedConcurrency === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['reservedConcurrency'],
          message:
            'required with auth "NONE": it caps how many requests from anyone on the internet run (and are billed) at once',
        });
      }
    }
    const prefix = m.retrain?.datasetPrefix;
    if (
      prefix !== undefined &&
      (!prefix.startsWith(`datasets/${m.name}/`) || /\.\.|\*/.test(prefix) || !prefix.endsWith('/'))
    ) {
      // The retraining role may read only its own model's data.
      ctx.addIssue({
        code: 'custom',
        path: ['retrain', 'datasetPrefix'],
        message: `must be datasets/${m.name}/ or a folder below it, ending in "/"`,
      });
    }
    if (m.retrain && !m.definition) {
      ctx.addIssue({
        code: 'custom',
        path: ['retrain'],
        message: 'retraining needs a "definition" to train',
      });
    }
    if (m.reservedConcurrency !== undefined && m.provisionedConcurrency > m.reservedConcurrency) {
      ctx.addIssue({
        code: 'custom',
        path: ['provisionedConcurrency'],
        message: 'cannot exceed reservedConcurrency',
      });
    }
  });

const manifestSchema = z.strictObject({
  app: name.default('aiaas'),
  models: z.array(modelSchema).min(1),
});

export type Manifest = z.output<typeof manifestSchema>;
export type ModelSpec = z.output<typeof modelSchema>;
export type ModelDefinition = z.output<typeof definitionSchema>;

/** Validates a parsed manifest; the error names the model and the field at fault. */
export function parseManifest(input: unknown, source = 'manifest'): Manifest {
  const result = manifestSchema.safeParse(input);
  if (!result.success) {
    const raw = input as { models?: Array<{ name?: unknown }> } | undefined;
    const lines = result.error.issues.map((issue) => {
      const [first, index, ...rest] = issue.path;
      if (first === 'models' && typeof index === 'number') {
        const modelName = raw?.models?.[index]?.name;
        const who = typeof modelName === 'string' ? `model "${modelName}"` : `models[${index}]`;
        return `${who}: ${rest.length ? `field "${rest.join('.')}"` : 'entry'}: ${issue.message}`;
      }
      return `field "${issue.path.join('.') || '(root)'}": ${issue.message}`;
    });
    throw new ConfigurationError(`Invalid ${source}: ${lines.join('; ')}`);
  }
  const seen = new Set<string>();
  for (const model of result.data.models) {
    if (seen.has(model.name))
      throw new ConfigurationError(`Invalid ${source}: model "${model.name}" is declared twice`);
    seen.add(model.name);
  }
  return result.data;
}

/**
 * One model's manifest entry passed as JSON (a function's AIAAS_MODEL_SPEC, named by `source`),
 * validated like the manifest; a ConfigurationError names the variable and the problem.
 */
export function parseModelSpec(raw: string, source: string): ModelSpec {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (cause) {
    throw new ConfigurationError(`${source} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return parseManifest({ models: [json] }, source).models[0]!;
}

/** Reads and validates a manifest file. */
export function loadManifest(path: string): Manifest {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigurationError(`Cannot read manifest ${path}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConfigurationError(`Manifest ${path} is not valid JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
  return parseManifest(json, `manifest ${path}`);
}

/** The dataset prefix of a model in the registry bucket. */
export function datasetPrefix(model: ModelSpec): string {
  return model.retrain?.datasetPrefix ?? `datasets/${model.name}/`;
}
