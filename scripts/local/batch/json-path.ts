/**
 * The JSONPath side of Amazon States Language as the batch definition uses it, for the local
 * executor: reference paths (`$`, `$.a.b`, `$$.Map.Item.Index`), payload templates (fields ending
 * in `.$`), the intrinsic `States.Format`, ResultPath and OutputPath. Anything else (filters,
 * wildcards, other intrinsics) throws NotEmulatedError naming it: the executor never guesses.
 */

/** A construct of the definition the local executor does not implement. */
export class NotEmulatedError extends Error {
  override readonly name = 'NotEmulatedError';
}

/** A States runtime error (`States.Runtime`, ...), as a failed execution would report it. */
export class StatesError extends Error {
  constructor(
    readonly error: string,
    override readonly cause: string,
  ) {
    super(`${error}: ${cause}`);
  }
}

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** The value at a reference path; `$$.` paths read `context`. Throws States.Runtime when absent. */
export function readPath(path: string, input: unknown, context: unknown): unknown {
  let value: unknown;
  let rest: string;
  if (path === '$') return input;
  if (path === '$$') return context;
  if (path.startsWith('$$.')) {
    value = context;
    rest = path.slice(3);
  } else if (path.startsWith('$.')) {
    value = input;
    rest = path.slice(2);
  } else {
    throw new NotEmulatedError(`path ${JSON.stringify(path)}: only $, $.a.b and $$.a.b paths are emulated`);
  }
  for (const segment of rest.split('.')) {
    if (!SEGMENT.test(segment)) {
      throw new NotEmulatedError(`path ${JSON.stringify(path)}: only plain field names are emulated`);
    }
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) {
      throw new StatesError('States.Runtime', `The JSONPath ${path} could not be found in the input`);
    }
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** Whether a reference path selects something (Choice's IsPresent). */
export function isPresent(path: string, input: unknown, context: unknown): boolean {
  try {
    readPath(path, input, context);
    return true;
  } catch (error) {
    if (error instanceof StatesError) return false;
    throw error;
  }
}

/** A `.$` value: a reference path or `States.Format(...)`. */
export function evaluateExpression(expression: string, input: unknown, context: unknown): unknown {
  if (expression.startsWith('States.')) return intrinsic(expression, input, context);
  return readPath(expression, input, context);
}

/** A payload template: fields ending in `.$` are evaluated, others copied (objects recursively). */
export function evaluateTemplate(template: unknown, input: unknown, context: unknown): unknown {
  if (Array.isArray(template)) return template.map((t) => evaluateTemplate(t, input, context));
  if (template === null || typeof template !== 'object') return template;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template as Record<string, unknown>)) {
    if (key.endsWith('.$')) {
      if (typeof value !== 'string') throw new NotEmulatedError(`field ${key} is not a path`);
      out[key.slice(0, -2)] = evaluateExpression(value, input, context);
    } else {
      out[key] = evaluateTemplate(value, input, context);
    }
  }
  return out;
}

/** ResultPath: where a state's result goes in its input (`null`: discarded, `$`: replaces it). */
export function applyResultPath(input: unknown, result: unknown, resultPath: unknown): unknown {
  if (resultPath === null) return input;
  if (resultPath === undefined || resultPath === '$') return result;
  if (typeof resultPath !== 'string' || !resultPath.startsWith('$.')) {
    throw new NotEmulatedError(`ResultPath ${JSON.stringify(resultPath)}`);
  }
  const segments = resultPath.slice(2).split('.');
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new StatesError('States.ResultPathMatchFailure', `Unable to apply ResultPath ${resultPath}`);
  }
  const root: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  let node = root;
  for (const [i, segment] of segments.entries()) {
    if (!SEGMENT.test(segment)) throw new NotEmulatedError(`ResultPath ${resultPath}`);
    if (i === segments.length - 1) {
      node[segment] = result;
    } else {
      const next = node[segment];
      const copy = next !== null && typeof next === 'object' ? { ...(next as object) } : {};
      node[segment] = copy;
      node = copy as Record<string, unknown>;
    }
  }
  return root;
}

/** `States.Format('literal {} text', $.path, ...)`: the only intrinsic the definition uses. */
function intrinsic(expression: string, input: unknown, context: unknown): unknown {
  const match = /^States\.Format\(\s*'((?:[^'\\]|\\.)*)'\s*((?:,\s*[^,()]+\s*)*)\)$/.exec(expression);
  if (!match) throw new NotEmulatedError(`intrinsic ${expression}: only States.Format is emulated`);
  const template = (match[1] ?? '').replace(/\\(.)/g, '$1');
  const args = (match[2] ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '')
    .map((a) => readPath(a, input, context));
  let next = 0;
  const text = template.replace(/\{\}/g, () => {
    if (next >= args.length) {
      throw new StatesError('States.IntrinsicFailure', `${expression}: more {} than arguments`);
    }
    const value = args[next++];
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
  if (next !== args.length) {
    throw new StatesError('States.IntrinsicFailure', `${expression}: more arguments than {}`);
  }
  return text;
}

/** A payload template compiled once, for the per-item ItemSelector and the batches' BatchInput. */
export type CompiledTemplate = (input: unknown, context: unknown) => unknown;

/** `template` as a function: the same result as evaluateTemplate, its paths split once. */
export function compileTemplate(template: unknown): CompiledTemplate {
  if (Array.isArray(template)) {
    const parts = template.map(compileTemplate);
    return (input, context) => parts.map((part) => part(input, context));
  }
  if (template === null || typeof template !== 'object') return () => template;
  const fields = Object.entries(template as Record<string, unknown>).map(
    ([key, value]): [string, CompiledTemplate] => {
      if (!key.endsWith('.$')) return [key, compileTemplate(value)];
      if (typeof value !== 'string') throw new NotEmulatedError(`field ${key} is not a path`);
      if (value.startsWith('States.'))
        return [key.slice(0, -2), (input, context) => evaluateExpression(value, input, context)];
      return [key.slice(0, -2), compilePath(value)];
    },
  );
  return (input, context) => {
    const out: Record<string, unknown> = {};
    for (const [key, part] of fields) out[key] = part(input, context);
    return out;
  };
}

/** A reference path as a function (see readPath). */
function compilePath(path: string): CompiledTemplate {
  if (path === '$') return (input) => input;
  if (path === '$$') return (_, context) => context;
  const fromContext = path.startsWith('$$.');
  if (!fromContext && !path.startsWith('$.')) {
    throw new NotEmulatedError(`path ${JSON.stringify(path)}: only $, $.a.b and $$.a.b paths are emulated`);
  }
  const segments = path.slice(fromContext ? 3 : 2).split('.');
  for (const segment of segments) {
    if (!SEGMENT.test(segment)) {
      throw new NotEmulatedError(`path ${JSON.stringify(path)}: only plain field names are emulated`);
    }
  }
  return (input, context) => {
    let value = fromContext ? context : input;
    for (const segment of segments) {
      if (value === null || typeof value !== 'object' || !(segment in value)) {
        throw new StatesError('States.Runtime', `The JSONPath ${path} could not be found in the input`);
      }
      value = (value as Record<string, unknown>)[segment];
    }
    return value;
  };
}
