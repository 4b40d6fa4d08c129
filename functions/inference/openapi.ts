/**
 * The OpenAPI 3.1 document of a served version (`GET /v1/models/<model>/openapi.json`), generated
 * from its signature and the function's limits. Pure. It describes what the function does, no
 * more: predict in row (`instances`) and columnar (`inputs`) formats as predict-request.ts reads
 * them and as answers.ts answers them, model status, metadata, this document, the `{"error": ...}`
 * body with its statuses (errors.ts), the `x-aiaas-model-version` header and IAM (SigV4) auth.
 * A request its schemas admit is accepted by the function, given the rules JSON Schema cannot
 * state and the descriptions do: a free dimension has one size across a request's instances, every
 * input the same batch size, and all inputs together at most `maxElements` numbers (the NaN and
 * Infinity tokens, which are not JSON, are described too). Tensor names starting with `$` go in
 * patternProperties, never as a `$ref`-like key tools would take for a reference.
 * Longer than most modules, it reads better whole: the document is one value, mostly schema literals, whose parts refer
 * to each other by name; apart, they would be read apart from the components they fill.
 */
import type { Signature, TensorSpec } from '../shared/registry/types.js';
import type { Limits } from './predict-request.js';

/** What the document is generated from: the served version and who serves it. */
export interface OpenApiSubject {
  readonly model: string;
  readonly alias: string;
  readonly version: number;
  readonly signature: Signature;
  readonly limits: Limits;
}

type Schema = Record<string, unknown>;

/** The largest finite float32 (as predict-request.ts checks it): larger values are refused. */
const FLOAT32_MAX = 3.4028234663852886e38;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
/** Dtypes a JSON request may carry (predict-request.ts: TensorBuilder). */
const JSON_DTYPES: ReadonlySet<string> = new Set(['float32', 'int32', 'bool']);
const VERSION_PATTERN = '^[1-9][0-9]*$';
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const response = (name: string) => ({ $ref: `#/components/responses/${name}` });

/** The OpenAPI 3.1 document for `subject`, as a plain JSON value. */
export function openApiDocument(subject: OpenApiSubject): Record<string, unknown> {
  const { model, alias, version, signature, limits } = subject;
  const base = `/v1/models/${model}`;
  const modelVersion = {
    'x-aiaas-model-version': {
      description: 'The version that gave this answer (a positive integer)',
      required: true,
      schema: { type: 'string', pattern: VERSION_PATTERN },
    },
  };
  const ok = (description: string, schema: Schema) => ({
    description,
    headers: modelVersion,
    content: { 'application/json': { schema } },
  });
  const reads = {
    '404': response('NotFound'),
    '500': response('InternalError'),
    '503': response('Unavailable'),
  };
  const predictOperation = (operationId: string, summary: string) => ({
    operationId,
    summary,
    description: predictDescription(signature, limits),
    requestBody: {
      required: true,
      content: { 'application/json': { schema: ref('PredictRequest'), ...requestExamples(signature) } },
    },
    responses: {
      '200': ok(
        'The predictions: `predictions` for a row request, `outputs` for a columnar one. Float values are written with a decimal point, and non-finite ones as the bare tokens NaN, Infinity and -Infinity (as TF Serving writes them: not standard JSON).',
        ref('PredictResponse'),
      ),
      '400': response('BadRequest'),
      '413': response('PayloadTooLarge'),
      ...reads,
    },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: `aiaas model "${model}"`,
      version: String(version),
      description: [
        `TensorFlow Serving's REST API for model "${model}", served by its aiaas function on alias "${alias}".`,
        `This document describes version ${version}, the one the alias served when it was generated; its \`info.version\` is that version. A promotion may change the signature: fetch the document again after one. While a canary runs, \`:predict\` may be answered by the canary version (\`x-aiaas-model-version\` says which); \`/versions/<n>/openapi.json\` describes either.`,
        `\`/v1/models/${model}/versions/<n>\` and \`/v1/models/${model}/labels/<alias>\` in front of \`:predict\`, \`/metadata\` or \`/openapi.json\` pin the version or the alias: one that is not served answers 404.`,
        'Every answer is JSON and `cache-control: no-store`; HEAD on a GET path answers its headers without a body.',
      ].join('\n\n'),
    },
    security: [{ awsSigV4: [] }],
    paths: {
      [`${base}:predict`]: {
        post: predictOperation('predict', 'Predict with the version the alias serves'),
      },
      [`${base}/versions/${version}:predict`]: {
        post: predictOperation(
          'predictWithVersion',
          `Predict with version ${version} only (404 once the alias has moved to another version)`,
        ),
      },
      [base]: {
        get: {
          operationId: 'getModelStatus',
          summary: 'Model status, as TF Serving reports it',
          responses: { '200': ok('The served version and its state', ref('ModelStatus')), ...reads },
        },
      },
      [`${base}/metadata`]: {
        get: {
          operationId: 'getModelMetadata',
          summary: "The served version's signature (TF Serving's SignatureDef) and aiaas's details",
          responses: { '200': ok('The metadata', ref('ModelMetadata')), ...reads },
        },
      },
      [`${base}/openapi.json`]: {
        get: {
          operationId: 'getOpenApiDocument',
          summary: 'This document, generated from the served version',
          responses: {
            '200': ok('An OpenAPI 3.1 document', { type: 'object', required: ['openapi', 'info', 'paths'] }),
            ...reads,
          },
        },
      },
    },
    components: {
      schemas: {
        PredictRequest: { oneOf: [ref('RowPredictRequest'), ref('ColumnarPredictRequest')] },
        RowPredictRequest: rowRequest(signature.inputs, limits),
        ColumnarPredictRequest: columnarRequest(signature.inputs, limits),
        PredictResponse: { oneOf: [ref('RowPredictResponse'), ref('ColumnarPredictResponse')] },
        RowPredictResponse: rowResponse(signature.outputs),
        ColumnarPredictResponse: columnarResponse(signature.outputs),
        ModelSpec: {
          type: 'object',
          description:
            'Which model and version answered (TF Serving leaves this out of predict answers; aiaas adds it).',
          properties: {
            name: { const: model },
            version: { type: 'string', pattern: VERSION_PATTERN },
            signature_name: { const: 'serving_default' },
          },
          required: ['name', 'version', 'signature_name'],
        },
        ModelStatus: modelStatusSchema(),
        ModelMetadata: modelMetadataSchema(model, signature),
        TensorInfo: tensorInfoSchema(),
        Error: {
          type: 'object',
          description:
            'Every error this API answers: 400 (the request does not fit the signature or the API; the message names the exact place), 404 (no such path, model, version or label here), 405 (a method the path does not take; `Allow` lists those it does), 413 (body too large), 500 (an internal error; the message gives the request id to find it in the logs), 503 (the model cannot be served right now; `Retry-After` says when to retry).',
          properties: { error: { type: 'string', description: 'What is wrong, written for the caller' } },
          required: ['error'],
          additionalProperties: false,
        },
      },
      responses: {
        BadRequest: errorResponse(
          'The request does not fit the signature or the API; `error` names the exact place',
        ),
        NotFound: errorResponse(
          'No such path, version or label here (a pinned version or label that is not served)',
        ),
        PayloadTooLarge: errorResponse(`The request body is larger than ${limits.maxBodyBytes} bytes`),
        InternalError: errorResponse(
          "An internal error; `error` gives the request id to find in the function's logs",
        ),
        Unavailable: {
          ...errorResponse(
            'The model cannot be served right now (not loaded yet, or the registry is unreachable)',
          ),
          headers: {
            'retry-after': { description: 'Seconds to wait before retrying', schema: { type: 'string' } },
          },
        },
      },
      securitySchemes: {
        awsSigV4: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description:
            "AWS Signature Version 4, service `lambda`, in the function's region: a Lambda function URL with auth type AWS_IAM (aiaas's default; a model's manifest `auth`) takes only requests signed by a principal allowed `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` on the function's alias, and refuses the rest with 403 and AWS's own body `{\"Message\":\"Forbidden\"}` (not this API's error shape). Sign with any SigV4 signer (the AWS SDKs, `aws-sigv4`, `awscurl`). A function URL with auth NONE takes unsigned requests.",
          'x-amazon-apigateway-authtype': 'awsSigv4',
        },
      },
    },
  };
}

function errorResponse(description: string): Schema {
  return { description, content: { 'application/json': { schema: ref('Error') } } };
}

/** What every predict operation says about the formats, beyond what the schemas say. */
function predictDescription(signature: Signature, limits: Limits): string {
  const inputs = signature.inputs;
  const names = inputs.map((s) => `\`${s.name}\``).join(', ');
  const lines = [
    inputs.length === 1
      ? `One input, ${names}: row format sends \`{"instances": [...]}\`, one value per instance (bare, or as \`{${JSON.stringify(inputs[0]!.name)}: value}\`); columnar format sends \`{"inputs": [...]}\` (or \`{"inputs": {${JSON.stringify(inputs[0]!.name)}: [...]}}\`), batched along the first dimension.`
      : `Inputs ${names}: row format sends \`{"instances": [{...}, ...]}\`, one object per instance with every input; columnar format sends \`{"inputs": {...}}\`, every input batched along its first dimension, all with the same number of instances.`,
    'Row instances are all bare values or all objects, never a mix. Free dimensions (any size) take the size the first instance gives them, and every instance must match it.',
    `At most ${limits.maxInstances} instances and ${limits.maxElements} numbers (all inputs together) per request, and ${limits.maxBodyBytes} bytes of body.`,
    'Float inputs may also hold the bare tokens `NaN`, `Infinity` and `-Infinity` (TF Serving\'s JSON extension). Bool inputs take `true`/`false` (or 1/0). `signature_name`, if sent, is "serving_default" or "".',
  ];
  const unaccepted = inputs.filter((s) => !JSON_DTYPES.has(s.dtype));
  if (unaccepted.length > 0) {
    lines.push(
      `Input(s) ${unaccepted.map((s) => `\`${s.name}\` (${s.dtype})`).join(', ')} have a dtype the JSON API does not accept: this model cannot be called through it.`,
    );
  }
  const unbatched = signature.outputs.filter((s) => s.shape.length === 0);
  if (unbatched.length > 0) {
    lines.push(
      `Output(s) ${unbatched.map((s) => `\`${s.name}\``).join(', ')} are not batched, so a row request is answered 400: send the columnar format.`,
    );
  }
  return lines.join('\n\n');
}

/** A spec's dimensions after the batch, free ones (null or negative) as null: predict-request.ts's reading. */
function innerDims(spec: TensorSpec): (number | null)[] {
  return spec.shape.slice(1).map((d) => (d === null || d < 0 ? null : d));
}

/** One request value of an input's dtype: the bounds predict-request.ts checks. */
function requestLeaf(spec: TensorSpec): Schema {
  if (!JSON_DTYPES.has(spec.dtype)) {
    return { not: {}, description: `dtype ${spec.dtype}: the JSON API does not accept this input` };
  }
  if (spec.vocabularySize !== undefined) {
    return {
      type: 'integer',
      format: 'int32',
      minimum: 0,
      maximum: spec.vocabularySize - 1,
      description: `An id: this input feeds an Embedding of ${spec.vocabularySize} entries`,
    };
  }
  if (spec.dtype === 'int32')
    return { type: 'integer', format: 'int32', minimum: INT32_MIN, maximum: INT32_MAX };
  if (spec.dtype === 'bool') return { type: 'boolean' };
  return { type: 'number', format: 'float', minimum: -FLOAT32_MAX, maximum: FLOAT32_MAX };
}

/** One answered value of an output's dtype. */
function responseLeaf(spec: TensorSpec): Schema {
  if (spec.dtype === 'int32') return { type: 'integer', format: 'int32' };
  if (spec.dtype === 'bool') return { type: 'boolean' };
  if (spec.dtype === 'float32') return { type: 'number', format: 'float' };
  return { description: `dtype ${spec.dtype}` };
}

/**
 * Arrays nested along `dims` around `leaf`: a fixed size is minItems = maxItems, a free one at
 * least one item in a request (an empty dimension is refused) and any number in an answer.
 */
function nested(dims: readonly (number | null)[], leaf: Schema, request: boolean): Schema {
  let schema = leaf;
  for (let i = dims.length - 1; i >= 0; i--) {
    const d = dims[i];
    schema =
      d === null || d === undefined
        ? { type: 'array', ...(request ? { minItems: 1 } : {}), items: schema }
        : { type: 'array', minItems: d, maxItems: d, items: schema };
  }
  return schema;
}

/** One instance of an input, as a request holds it. */
function requestInstance(spec: TensorSpec): Schema {
  const dims = innerDims(spec);
  // A fixed dimension of size 0 is refused as empty: no instance can be sent.
  if (dims.includes(0)) {
    return {
      not: {},
      description: `Input "${spec.name}" has a dimension of size 0: no instance can be sent`,
    };
  }
  return { ...nested(dims, requestLeaf(spec), true), description: tensorDescription(spec) };
}

function tensorDescription(spec: TensorSpec): string {
  const shape = spec.shape.map((d) => (d === null || d < 0 ? -1 : d));
  return `${spec.name}: ${spec.dtype}, shape [${shape.join(', ')}] (the first dimension is the batch)`;
}

/** A batch of `items`: the request's instances, or one input's column. */
function batch(items: Schema, limits: Limits, description?: string): Schema {
  return {
    type: 'array',
    minItems: 1,
    maxItems: limits.maxInstances,
    items,
    ...(description ? { description } : {}),
  };
}

/**
 * An object of exactly these properties, all required. A name starting with `$` goes in
 * patternProperties instead: tools that resolve references walk every `$ref` key, whatever it is.
 */
function objectOf(properties: Record<string, Schema>, closed = true): Schema {
  const plain: Record<string, Schema> = {};
  const patterns: Record<string, Schema> = {};
  for (const [name, schema] of Object.entries(properties)) {
    if (name.startsWith('$')) patterns[`^${name.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}$`] = schema;
    else
      Object.defineProperty(plain, name, {
        value: schema,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return {
    type: 'object',
    properties: plain,
    ...(Object.keys(patterns).length > 0 ? { patternProperties: patterns } : {}),
    required: Object.keys(properties),
    ...(closed ? { additionalProperties: false } : {}),
  };
}

/** `value` of each spec, keyed by its name. */
function byName<T>(specs: readonly TensorSpec[], value: (spec: TensorSpec) => T): Record<string, T> {
  // Filled through a null-prototype object: an input named `__proto__` is a key like any other.
  const out: Record<string, T> = Object.create(null);
  for (const spec of specs) out[spec.name] = value(spec);
  return { ...out };
}

const signatureName = {
  type: 'string',
  enum: ['', 'serving_default'],
  description: 'The signature to use: this model has only "serving_default" (also the meaning of "")',
};

function rowRequest(inputs: readonly TensorSpec[], limits: Limits): Schema {
  const named = objectOf(byName(inputs, requestInstance));
  const instances =
    inputs.length === 1
      ? {
          oneOf: [
            batch(requestInstance(inputs[0]!), limits, 'One bare value per instance'),
            batch(named, limits, 'One object per instance, keyed by input name'),
          ],
        }
      : batch(named, limits, 'One object per instance, keyed by input name');
  return {
    type: 'object',
    description: 'Row format: a list of instances, answered with `predictions`.',
    properties: { instances, signature_name: signatureName },
    required: ['instances'],
  };
}

function columnarRequest(inputs: readonly TensorSpec[], limits: Limits): Schema {
  const named = objectOf(byName(inputs, (spec) => batch(requestInstance(spec), limits)));
  const columns =
    inputs.length === 1
      ? { oneOf: [batch(requestInstance(inputs[0]!), limits, 'The input, batched'), named] }
      : { ...named, description: 'Every input batched along its first dimension, with the same batch size' };
  return {
    type: 'object',
    description: 'Columnar format: each input batched along its first dimension, answered with `outputs`.',
    properties: { inputs: columns, signature_name: signatureName },
    required: ['inputs'],
  };
}

function responseInstance(spec: TensorSpec): Schema {
  return { ...nested(innerDims(spec), responseLeaf(spec), false), description: tensorDescription(spec) };
}

/** A whole output tensor; its first dimension is the batch, whatever the signature fixes it to. */
function responseTensor(spec: TensorSpec): Schema {
  if (spec.shape.length === 0) return { ...responseLeaf(spec), description: tensorDescription(spec) };
  return {
    ...nested([null, ...innerDims(spec)], responseLeaf(spec), false),
    description: tensorDescription(spec),
  };
}

function rowResponse(outputs: readonly TensorSpec[]): Schema {
  const predictions =
    outputs.length === 1
      ? { type: 'array', items: responseInstance(outputs[0]!), description: 'One value per instance' }
      : {
          type: 'array',
          items: objectOf(byName(outputs, responseInstance)),
          description: 'One object per instance, keyed by output name',
        };
  return {
    type: 'object',
    description: 'The answer to a row request.',
    properties: { predictions, model_spec: ref('ModelSpec') },
    required: ['predictions', 'model_spec'],
  };
}

function columnarResponse(outputs: readonly TensorSpec[]): Schema {
  const values =
    outputs.length === 1
      ? responseTensor(outputs[0]!)
      : { ...objectOf(byName(outputs, responseTensor)), description: 'Each output, batched' };
  return {
    type: 'object',
    description: 'The answer to a columnar request.',
    properties: { outputs: values, model_spec: ref('ModelSpec') },
    required: ['outputs', 'model_spec'],
  };
}

function modelStatusSchema(): Schema {
  return {
    type: 'object',
    properties: {
      model_version_status: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            version: { type: 'string', pattern: VERSION_PATTERN },
            state: { type: 'string', enum: ['AVAILABLE', 'LOADING', 'UNAVAILABLE'] },
            status: {
              type: 'object',
              properties: { error_code: { type: 'string' }, error_message: { type: 'string' } },
              required: ['error_code', 'error_message'],
            },
          },
          required: ['version', 'state', 'status'],
        },
      },
    },
    required: ['model_version_status'],
  };
}

function tensorInfoSchema(): Schema {
  return {
    type: 'object',
    properties: {
      dtype: { type: 'string', description: 'DT_FLOAT, DT_INT32, DT_BOOL, DT_STRING or DT_INVALID' },
      tensor_shape: {
        type: 'object',
        properties: {
          dim: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                size: { type: 'string', description: 'The size; "-1" for any' },
                name: { type: 'string' },
              },
              required: ['size'],
            },
          },
          unknown_rank: { type: 'boolean' },
        },
        required: ['dim'],
      },
      name: { type: 'string' },
    },
    required: ['dtype', 'tensor_shape', 'name'],
  };
}

function modelMetadataSchema(model: string, signature: Signature): Schema {
  const tensors = (specs: readonly TensorSpec[]) =>
    objectOf(
      byName(specs, () => ref('TensorInfo')),
      false,
    );
  return {
    type: 'object',
    properties: {
      model_spec: {
        type: 'object',
        properties: {
          name: { const: model },
          signature_name: { type: 'string' },
          version: { type: 'string', pattern: VERSION_PATTERN },
        },
        required: ['name', 'version'],
      },
      metadata: {
        type: 'object',
        properties: {
          signature_def: {
            type: 'object',
            properties: {
              signature_def: {
                type: 'object',
                properties: {
                  serving_default: {
                    type: 'object',
                    properties: {
                      inputs: tensors(signature.inputs),
                      outputs: tensors(signature.outputs),
                      method_name: { type: 'string' },
                    },
                    required: ['inputs', 'outputs'],
                  },
                },
                required: ['serving_default'],
              },
            },
            required: ['signature_def'],
          },
        },
        required: ['signature_def'],
      },
      aiaas: {
        type: 'object',
        description:
          "aiaas's details of the served version: alias, runtime, created_at, source, metrics, parent",
        properties: {
          alias: { type: 'string' },
          runtime: { type: 'string' },
          created_at: { type: 'string' },
          source: { type: 'object' },
          metrics: { type: 'object', additionalProperties: { type: 'number' } },
          parent: { type: ['integer', 'null'] },
        },
      },
    },
    required: ['model_spec', 'metadata'],
  };
}

/** A valid value of one request leaf: the middle of an Embedding's ids, 0, or false. */
function sampleLeaf(spec: TensorSpec): unknown {
  if (spec.dtype === 'bool') return false;
  if (spec.vocabularySize !== undefined) return Math.floor((spec.vocabularySize - 1) / 2);
  return 0;
}

function sampleInstance(spec: TensorSpec): unknown {
  const build = (dims: readonly (number | null)[]): unknown =>
    dims.length === 0 ? sampleLeaf(spec) : Array.from({ length: dims[0] ?? 1 }, () => build(dims.slice(1)));
  return build(innerDims(spec));
}

/** One row and one columnar example request of one instance, when the model can be called at all. */
function requestExamples(signature: Signature): Schema {
  const { inputs } = signature;
  // An input named `$...` would put a key like `$ref` in the example, which tools take for a reference.
  const unfit = (s: TensorSpec) =>
    !JSON_DTYPES.has(s.dtype) || innerDims(s).includes(0) || s.name.startsWith('$');
  if (inputs.length === 0 || inputs.some(unfit)) return {};
  const one = inputs.length === 1 ? inputs[0]! : undefined;
  return {
    examples: {
      row: {
        summary: 'Row format, one instance',
        value: { instances: [one ? sampleInstance(one) : byName(inputs, sampleInstance)] },
      },
      columnar: {
        summary: 'Columnar format, one instance',
        value: { inputs: one ? [sampleInstance(one)] : byName(inputs, (s) => [sampleInstance(s)]) },
      },
    },
  };
}
