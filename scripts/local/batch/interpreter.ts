/**
 * Runs a batch state machine's definition (ASL, JSONPath) locally: the states the batch
 * definition uses (Choice on StringEquals / IsPresent, Task, Distributed Map, Fail, Succeed) with
 * their Retry, Catch, TimeoutSeconds, Parameters and ResultPath; the Distributed Map with its
 * ItemReader (CSV, JSON Lines from the local S3), ItemSelector, ItemBatcher, MaxConcurrency,
 * ToleratedFailurePercentage / Count and ResultWriter (Step Functions' manifest.json and
 * SUCCEEDED_n / FAILED_n / PENDING_n files, with WriterConfig's NONE or COMPACT, JSON or JSONL). Tasks call their handlers by Resource ARN (in
 * this thread, or in warm worker threads: lambda-pool.ts) with JSON copies of their input and
 * output (as Lambda passes them), and the 256 KiB payload
 * limit is enforced. Anything else in a definition throws NotEmulatedError: what runs here is the
 * deployed definition or nothing. What it does not emulate: NOT_EMULATED (executor.ts).
 * One interpreter that reads better whole: the states share one data flow (Parameters, ResultPath,
 * Retry and Catch), and the Map's reader, batcher and writer hand each other the same items.
 */
import { randomUUID } from 'node:crypto';
import type { ObjectStore } from '../../../functions/shared/registry/store.js';
import { itemSource } from './item-reader.js';
import {
  applyResultPath,
  compileTemplate,
  evaluateTemplate,
  isPresent,
  NotEmulatedError,
  readPath,
  StatesError,
} from './json-path.js';

/** Step Functions' largest state input or output, and so a batch's. */
export const PAYLOAD_LIMIT_BYTES = 256 * 1024;
/**
 * ResultWriter cuts its files here locally (Step Functions: 5 GB): no file nears V8's string limit,
 * and the final step reads one file while the next arrives.
 */
export const RESULT_FILE_BYTES = 8 * 1024 * 1024;

type Json = Record<string, unknown>;
/**
 * A Task's code: a function given a parsed copy of its input (its output is copied back), or a
 * function run elsewhere that takes and gives JSON text (lambda-pool.ts), as Lambda's Invoke does.
 */
export type TaskHandler = TaskFunction | JsonTask;

export type TaskFunction = (input: unknown) => Promise<unknown>;

export interface JsonTask {
  invoke(inputText: string): Promise<string>;
}

/** How a child execution (one batch) ended. */
export interface ChildOutcome {
  readonly items: number;
  readonly status: 'SUCCEEDED' | 'FAILED';
  /** The child's output, parsed (SUCCEEDED only). */
  readonly output?: unknown;
}

export interface InterpreterOptions {
  /** Handlers by the Task Resource ARN they stand for. */
  readonly tasks: Readonly<Record<string, TaskHandler>>;
  /** The registry bucket (ItemReader and ResultWriter must name it). */
  readonly store: ObjectStore;
  readonly bucket: string;
  readonly stateMachineName: string;
  readonly executionName: string;
  /** Told when a Map has read its items (their number), and after each child execution. */
  readonly onMapStart?: (items: number) => void;
  readonly onChild?: (outcome: ChildOutcome) => void;
  /** How long a Distributed Map spent reading its input, running its children (their batches made as they start), writing the last results. */
  readonly onPhase?: (phase: 'read' | 'children' | 'results', ms: number) => void;
  /** Retry waits, scaled (tests): the definition's seconds times this. @default 1 */
  readonly retryDelayScale?: number;
}

export interface ExecutionResult {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  readonly startDate: Date;
  readonly stopDate: Date;
}

/** Runs one execution of `definition` with `input`. */
export async function execute(
  definition: { StartAt: string; States: Record<string, Json> },
  input: unknown,
  options: InterpreterOptions,
): Promise<ExecutionResult> {
  if (((definition as Json).QueryLanguage ?? 'JSONPath') !== 'JSONPath') {
    throw new NotEmulatedError(`QueryLanguage ${String((definition as Json).QueryLanguage)}`);
  }
  const startDate = new Date();
  const context = {
    Execution: {
      Id: `arn:aws:states:us-east-1:000000000000:execution:${options.stateMachineName}:${options.executionName}`,
      Name: options.executionName,
      Input: input,
      StartTime: startDate.toISOString(),
    },
    StateMachine: {
      Id: `arn:aws:states:us-east-1:000000000000:stateMachine:${options.stateMachineName}`,
      Name: options.stateMachineName,
    },
  };
  try {
    const output = await runStates(definition, copy(input), context, options, false);
    return { status: 'SUCCEEDED', output, startDate, stopDate: new Date() };
  } catch (error) {
    if (error instanceof NotEmulatedError) throw error;
    const { name, cause } = errorOf(error);
    return { status: 'FAILED', error: name, cause, startDate, stopDate: new Date() };
  }
}

async function runStates(
  machine: { StartAt: string; States: Record<string, Json> },
  input: unknown,
  context: Json,
  options: InterpreterOptions,
  child: boolean,
): Promise<unknown> {
  let name = machine.StartAt;
  let data = input;
  // A bound on transitions: the batch definition has no loops.
  for (let transitions = 0; transitions < 1000; transitions++) {
    const state = machine.States[name];
    if (!state) throw new NotEmulatedError(`state ${name} is not in the definition`);
    if ((state.QueryLanguage ?? 'JSONPath') !== 'JSONPath') {
      throw new NotEmulatedError(`QueryLanguage ${String(state.QueryLanguage)} (state ${name})`);
    }
    for (const field of ['InputPath', 'OutputPath']) {
      if (field in state && state[field] !== '$' && !(state.Type === 'Succeed' && field === 'OutputPath')) {
        throw new NotEmulatedError(`${field} of state ${name}`);
      }
    }
    switch (state.Type) {
      case 'Choice':
        name = choose(name, state, data, context);
        continue;
      case 'Fail': {
        const error = state.ErrorPath ? readPath(String(state.ErrorPath), data, context) : state.Error;
        const cause = state.CausePath ? readPath(String(state.CausePath), data, context) : state.Cause;
        throw new StatesError(String(error ?? 'States.Fail'), String(cause ?? ''));
      }
      case 'Succeed':
        return state.OutputPath ? readPath(String(state.OutputPath), data, context) : data;
      case 'Task':
      case 'Map': {
        let result: unknown;
        try {
          result =
            state.Type === 'Task'
              ? (await runTask(name, state, data, context, options)).output
              : await runDistributedMap(name, state, data, context, options, child);
        } catch (error) {
          if (error instanceof NotEmulatedError) throw error;
          const { name: errorName, cause } = errorOf(error);
          const catcher = ((state.Catch as Json[] | undefined) ?? []).find((c) =>
            matches(c.ErrorEquals as string[], errorName),
          );
          if (!catcher) throw error;
          data = applyResultPath(data, { Error: errorName, Cause: cause }, catcher.ResultPath);
          name = String(catcher.Next);
          continue;
        }
        data = applyResultPath(data, result, state.ResultPath);
        if (state.End === true) return data;
        name = String(state.Next);
        continue;
      }
      default:
        throw new NotEmulatedError(`state type ${String(state.Type)} (state ${name})`);
    }
  }
  throw new NotEmulatedError('more than 1000 transitions');
}

function choose(name: string, state: Json, data: unknown, context: unknown): string {
  for (const rule of (state.Choices as Json[] | undefined) ?? []) {
    const keys = Object.keys(rule).filter((k) => k !== 'Next' && k !== 'Variable');
    const variable = String(rule.Variable);
    let hit: boolean;
    if (keys.length === 1 && keys[0] === 'StringEquals') {
      // A missing variable is a runtime error in Step Functions.
      hit = readPath(variable, data, context) === rule.StringEquals;
    } else if (keys.length === 1 && keys[0] === 'IsPresent') {
      hit = isPresent(variable, data, context) === rule.IsPresent;
    } else {
      throw new NotEmulatedError(`Choice rule ${keys.join(', ')} (state ${name})`);
    }
    if (hit) return String(rule.Next);
  }
  if (state.Default === undefined)
    throw new StatesError('States.NoChoiceMatched', `No choice of ${name} matched`);
  return String(state.Default);
}

/** A Task: its payload and result cross as JSON (as Lambda's do), within the payload limit. */
async function runTask(
  name: string,
  state: Json,
  data: unknown,
  context: unknown,
  options: InterpreterOptions,
): Promise<{ output: unknown; inputText: string; outputText: string }> {
  const handler = options.tasks[String(state.Resource)];
  if (!handler)
    throw new NotEmulatedError(
      `Task resource ${String(state.Resource)} (state ${name}) has no local handler`,
    );
  const payload = state.Parameters ? evaluateTemplate(state.Parameters, data, context) : data;
  const inputText = jsonText(payload);
  limit(inputText, `The input of state ${name}`);
  const retriers = (state.Retry as Json[] | undefined) ?? [];
  const attempts = new Map<Json, number>();
  for (;;) {
    try {
      const outputText =
        typeof handler === 'function'
          ? JSON.stringify(
              (await withTimeout(handler(JSON.parse(inputText)), state.TimeoutSeconds, name)) ?? null,
            )
          : await withTimeout(handler.invoke(inputText), state.TimeoutSeconds, name);
      limit(outputText, `The output of state ${name}`);
      return { output: parsedCopy(outputText), inputText, outputText };
    } catch (error) {
      const { name: errorName } = errorOf(error);
      const retrier = retriers.find((r) => matches(r.ErrorEquals as string[], errorName));
      const done = retrier ? (attempts.get(retrier) ?? 0) : 0;
      if (!retrier || done >= Number(retrier.MaxAttempts ?? 3)) throw error;
      attempts.set(retrier, done + 1);
      const seconds = Number(retrier.IntervalSeconds ?? 1) * Number(retrier.BackoffRate ?? 2) ** done;
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000 * (options.retryDelayScale ?? 1)));
    }
  }
}

async function runDistributedMap(
  name: string,
  state: Json,
  data: unknown,
  context: Json,
  options: InterpreterOptions,
  child: boolean,
): Promise<unknown> {
  const processor = state.ItemProcessor as {
    ProcessorConfig?: Json;
    StartAt: string;
    States: Record<string, Json>;
  };
  if (child || processor?.ProcessorConfig?.Mode !== 'DISTRIBUTED') {
    throw new NotEmulatedError(`Map state ${name}: only a top-level Distributed Map is emulated`);
  }
  for (const field of [
    'ItemsPath',
    'Parameters',
    'ResultSelector',
    'MaxConcurrencyPath',
    'ToleratedFailurePercentagePath',
    'ToleratedFailureCountPath',
  ]) {
    if (field in state) throw new NotEmulatedError(`${field} of Map state ${name}`);
  }
  let phaseStart = performance.now();
  const phase = (name: 'read' | 'children' | 'results') => {
    const now = performance.now();
    options.onPhase?.(name, now - phaseStart);
    phaseStart = now;
  };
  const reader = state.ItemReader as Json | undefined;
  if (reader?.Resource !== 'arn:aws:states:::s3:getObject') {
    throw new NotEmulatedError(
      `Map state ${name}: only an ItemReader of arn:aws:states:::s3:getObject is emulated`,
    );
  }
  const source = evaluateTemplate(reader.Parameters, data, context) as { Bucket?: unknown; Key?: unknown };
  if (source.Bucket !== options.bucket) {
    throw new StatesError(
      'States.ItemReaderFailed',
      `The local stack has bucket ${options.bucket}, not ${String(source.Bucket)}`,
    );
  }
  const object = await options.store.get(String(source.Key)).catch((error: Error) => {
    throw new StatesError(
      'States.ItemReaderFailed',
      `Cannot read s3://${options.bucket}/${String(source.Key)}: ${error.message}`,
    );
  });
  if (!object) {
    throw new StatesError(
      'States.ItemReaderFailed',
      `The specified key does not exist: s3://${options.bucket}/${String(source.Key)}`,
    );
  }
  const values = itemSource(new TextDecoder().decode(object.body), (reader.ReaderConfig as Json) ?? {});
  const selector = state.ItemSelector === undefined ? undefined : compileTemplate(state.ItemSelector);
  // Each item's context: the execution's, plus $$.Map.Item.
  const itemContext = Object.create(context) as Json;
  // Items are made as their batch is (not all first), so a batch's rows die with it.
  const item = (index: number) => {
    const value = values.at(index);
    if (!selector) return value;
    itemContext.Map = { Item: { Index: index, Value: value } };
    return selector(data, itemContext);
  };
  options.onMapStart?.(values.count);
  const nextBatch = batcher(values.count, item, state.ItemBatcher as Json | undefined, data, context);
  phase('read');

  const mapRunId = randomUUID();
  const label = String(state.Label ?? name);
  const mapRunArn = `arn:aws:states:us-east-1:000000000000:mapRun:${options.stateMachineName}/${label}:${mapRunId}`;
  const childType = String(processor.ProcessorConfig.ExecutionType ?? 'STANDARD');
  const results = resultWriter(state, data, context, options, mapRunId);
  const total = values.count;
  const percent = state.ToleratedFailurePercentage as number | undefined;
  const count = state.ToleratedFailureCount as number | undefined;
  let failedItems = 0;
  const exceeded = () =>
    (percent !== undefined && failedItems * 100 > percent * total) ||
    (count !== undefined && failedItems > count) ||
    (percent === undefined && count === undefined && failedItems > 0);

  const concurrency = Math.max(1, Math.min(Number(state.MaxConcurrency ?? 0) || 10_000, total || 1));
  let next = 0;
  // A batch that cannot be made (ItemSelector) stops every worker, and then fails the map run.
  let unmade: { error: unknown } | undefined;
  const take = () => {
    if (unmade) return undefined;
    try {
      return nextBatch();
    } catch (error) {
      unmade = { error };
      return undefined;
    }
  };
  const worker = async () => {
    while (!exceeded()) {
      const batch = take();
      if (!batch) return;
      const index = next++;
      const childName = `${mapRunId.slice(0, 8)}-${index}`;
      const started = new Date();
      const meta = {
        ExecutionArn: `arn:aws:states:us-east-1:000000000000:${childType === 'EXPRESS' ? 'express' : 'execution'}:${options.stateMachineName}/${label}:${childName}`,
        Name: childName,
        StateMachineArn: `arn:aws:states:us-east-1:000000000000:stateMachine:${options.stateMachineName}/${label}`,
        StartDate: started.toISOString(),
        RedriveCount: 0,
      };
      const inputText = batch.text;
      try {
        limit(inputText, `The input of a child execution of ${name}`);
        // The batch itself, not a copy: nothing here changes it, and its task gets its own copy.
        const output = await runStates(processor, batch.input, context, options, true);
        const outputText = jsonText(output ?? null);
        limit(outputText, `The output of a child execution of ${name}`);
        if (results.compact) {
          results.addText('SUCCEEDED', outputText);
        } else {
          results.add('SUCCEEDED', {
            ...meta,
            Input: inputText,
            InputDetails: { Included: true },
            Output: outputText,
            OutputDetails: { Included: true },
            Status: 'SUCCEEDED',
            StopDate: new Date().toISOString(),
          });
        }
        options.onChild?.({ items: batch.items, status: 'SUCCEEDED', output });
      } catch (error) {
        if (error instanceof NotEmulatedError) throw error;
        const { name: errorName, cause } = errorOf(error);
        failedItems += batch.items;
        results.add('FAILED', {
          ...meta,
          Input: inputText,
          InputDetails: { Included: true },
          Error: errorName,
          Cause: cause,
          Status: 'FAILED',
          StopDate: new Date().toISOString(),
        });
        options.onChild?.({ items: batch.items, status: 'FAILED' });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (unmade) throw unmade.error;
  phase('children');
  for (let batch = nextBatch(); batch; batch = nextBatch()) {
    results.add('PENDING', {
      Input: batch.text,
      InputDetails: { Included: true },
      Status: 'PENDING',
    });
  }

  const manifestKey = await results.close(mapRunArn);
  phase('results');
  if (exceeded()) {
    throw new StatesError(
      'States.ExceedToleratedFailureThreshold',
      `The specified tolerated failure threshold was exceeded: ${failedItems} of ${total} items failed (${mapRunArn})`,
    );
  }
  return { MapRunArn: mapRunArn, ResultWriterDetails: { Bucket: options.bucket, Key: manifestKey } };
}

/** A child's input: its items, and its JSON text (made once: the payload limit and ResultWriter need it). */
interface Batch {
  readonly input: unknown;
  readonly text: string;
  readonly items: number;
}

/**
 * ItemBatcher: consecutive items, cut at MaxItemsPerBatch or MaxInputBytesPerBatch, one batch per
 * call (undefined after the last), its items made from their indexes then.
 */
function batcher(
  count: number,
  item: (index: number) => unknown,
  batcher: Json | undefined,
  data: unknown,
  context: unknown,
): () => Batch | undefined {
  let at = 0;
  if (!batcher) {
    return () => {
      if (at >= count) return undefined;
      const input = item(at++);
      return { input, text: JSON.stringify(input), items: 1 };
    };
  }
  for (const field of Object.keys(batcher)) {
    if (!['MaxItemsPerBatch', 'MaxInputBytesPerBatch', 'BatchInput'].includes(field)) {
      throw new NotEmulatedError(`ItemBatcher field ${field}`);
    }
  }
  const maxItems = Number(batcher.MaxItemsPerBatch ?? Number.POSITIVE_INFINITY);
  const maxBytes = Number(batcher.MaxInputBytesPerBatch ?? PAYLOAD_LIMIT_BYTES);
  const batchInput =
    batcher.BatchInput === undefined ? undefined : evaluateTemplate(batcher.BatchInput, data, context);
  // {"Items":[...],"BatchInput":...}: what JSON.stringify writes for the batch.
  const tail = batchInput === undefined ? ']}' : `],"BatchInput":${JSON.stringify(batchInput)}}`;
  const overhead = Buffer.byteLength(`{"Items":[${tail}`);
  const made = (current: unknown[], text: string): Batch => {
    const input = { Items: current, ...(batchInput === undefined ? {} : { BatchInput: batchInput }) };
    knownTexts.set(input, text);
    return { input, text, items: current.length };
  };
  // Most batches are MaxItemsPerBatch items well within the byte limit: one text for them all,
  // until a batch is cut by bytes (then item by item, so no text is made twice more than once).
  let whole = Number.isFinite(maxItems);
  return () => {
    if (at >= count) return undefined;
    if (whole) {
      const end = Math.min(count, at + maxItems);
      const current = new Array<unknown>(end - at);
      for (let i = at; i < end; i++) current[i - at] = item(i);
      const text = `{"Items":${JSON.stringify(current)}${tail.slice(1)}`;
      // The byte rule below counts a comma after every item, the last one too.
      if (Buffer.byteLength(text) + 1 <= maxBytes) {
        at = end;
        return made(current, text);
      }
      whole = false;
    }
    const current: unknown[] = [];
    const texts: string[] = [];
    let bytes = overhead;
    for (; at < count && current.length < maxItems; at++) {
      const value = item(at);
      const itemText = JSON.stringify(value);
      const size = Buffer.byteLength(itemText) + 1;
      // A single item over the limit still goes alone: its child then fails on the payload limit.
      if (current.length > 0 && bytes + size > maxBytes) break;
      current.push(value);
      texts.push(itemText);
      bytes += size;
    }
    return made(current, `{"Items":[${texts.join(',')}${tail}`);
  };
}

type ResultStatus = 'SUCCEEDED' | 'FAILED' | 'PENDING';

/**
 * ResultWriter: manifest.json and the result files under Prefix/<map run id>/, as Step Functions
 * writes them. WriterConfig: Transformation NONE (each child with its metadata, Input and Output as
 * JSON text) or COMPACT (a succeeded child as its output alone; failed and pending ones as with
 * NONE), OutputType JSON (an array per file) or JSONL (one entry per line); without WriterConfig,
 * NONE and JSON. Entries are added as children end; a file is written (in the background) as soon as
 * it is full, so the local S3 takes it in while the next children run. `close` writes the rest and
 * the manifest, or throws States.ResultWriterFailed (a bad ResultWriter, a failed write).
 */
function resultWriter(
  state: Json,
  data: unknown,
  context: unknown,
  options: InterpreterOptions,
  mapRunId: string,
): {
  /** Whether a succeeded child is recorded as its output alone (addText). */
  readonly compact: boolean;
  add(status: ResultStatus, entry: Json): void;
  /** An entry already as JSON text. */
  addText(status: ResultStatus, text: string): void;
  close(mapRunArn: string): Promise<string>;
} {
  const writer = state.ResultWriter as Json | undefined;
  if (writer?.Resource !== 'arn:aws:states:::s3:putObject') {
    throw new NotEmulatedError('a Distributed Map without a ResultWriter to arn:aws:states:::s3:putObject');
  }
  const config = (writer.WriterConfig ?? {}) as Json;
  const transformation = config.Transformation ?? 'NONE';
  const outputType = config.OutputType ?? 'JSON';
  if (
    typeof config !== 'object' ||
    Object.keys(config).some((field) => field !== 'Transformation' && field !== 'OutputType') ||
    (transformation !== 'NONE' && transformation !== 'COMPACT') ||
    (outputType !== 'JSON' && outputType !== 'JSONL')
  ) {
    throw new NotEmulatedError(
      `ResultWriter's WriterConfig ${JSON.stringify(config)} (emulated: Transformation NONE or COMPACT, OutputType JSON or JSONL)`,
    );
  }
  const lines = outputType === 'JSONL';
  // A bad target fails the map run when it ends (as Step Functions fails it), not before its children run.
  let failure: StatesError | undefined;
  let prefix = '';
  try {
    const target = evaluateTemplate(writer.Parameters, data, context) as {
      Bucket?: unknown;
      Prefix?: unknown;
    };
    if (target.Bucket !== options.bucket) {
      throw new StatesError(
        'States.ResultWriterFailed',
        `The local stack has bucket ${options.bucket}, not ${String(target.Bucket)}`,
      );
    }
    prefix = `${String(target.Prefix ?? '').replace(/\/+$/, '')}/${mapRunId}/`;
  } catch (error) {
    if (error instanceof NotEmulatedError) throw error;
    failure = error instanceof StatesError ? error : new StatesError('States.Runtime', errorOf(error).cause);
  }
  const files: Record<ResultStatus, { Key: string; Size: number }[]> = {
    SUCCEEDED: [],
    FAILED: [],
    PENDING: [],
  };
  // JSON: `[` and `]` around entries joined by commas; JSONL: each entry and its newline.
  const framing = lines ? 0 : 2;
  const chunks: Record<ResultStatus, { texts: string[]; size: number }> = {
    SUCCEEDED: { texts: [], size: framing },
    FAILED: { texts: [], size: framing },
    PENDING: { texts: [], size: framing },
  };
  const writes: Promise<unknown>[] = [];
  const flush = (status: ResultStatus) => {
    const chunk = chunks[status];
    if (failure || chunk.texts.length === 0) return;
    // Bytes, not a string: the SDK handles a large string body far more slowly.
    const body = Buffer.from(lines ? `${chunk.texts.join('\n')}\n` : `[${chunk.texts.join(',')}]`);
    // The same names for JSONL: the manifest lists each file by its key.
    const key = `${prefix}${status}_${files[status].length}.json`;
    const written = options.store.put(key, body, {
      contentType: lines ? 'application/jsonl' : 'application/json',
    });
    written.catch(() => undefined); // awaited in close
    writes.push(written);
    files[status].push({ Key: key, Size: body.length });
    chunks[status] = { texts: [], size: framing };
  };
  const addText = (status: ResultStatus, text: string) => {
    if (failure) return;
    if (chunks[status].size + text.length + 1 > RESULT_FILE_BYTES) flush(status);
    chunks[status].texts.push(text);
    chunks[status].size += text.length + 1;
  };
  return {
    compact: transformation === 'COMPACT',
    add(status, entry) {
      addText(status, JSON.stringify(entry));
    },
    addText,
    async close(mapRunArn) {
      if (failure) throw failure;
      flush('SUCCEEDED');
      flush('FAILED');
      flush('PENDING');
      try {
        await Promise.all(writes);
        const manifestKey = `${prefix}manifest.json`;
        await options.store.put(
          manifestKey,
          JSON.stringify({ DestinationBucket: options.bucket, MapRunArn: mapRunArn, ResultFiles: files }),
          { contentType: 'application/json' },
        );
        return manifestKey;
      } catch (error) {
        throw new StatesError(
          'States.ResultWriterFailed',
          `Cannot write the results under ${prefix}: ${(error as Error).message}`,
        );
      }
    },
  };
}

function limit(text: string, what: string): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > PAYLOAD_LIMIT_BYTES) {
    throw new StatesError(
      'States.DataLimitExceeded',
      `${what} is ${bytes} bytes, over the ${PAYLOAD_LIMIT_BYTES}-byte limit`,
    );
  }
}

/** A retrier's or catcher's ErrorEquals against an error name (States.ALL: any but States.Runtime). */
function matches(errorEquals: readonly string[] | undefined, name: string): boolean {
  return (errorEquals ?? []).some(
    (e) =>
      e === name || (e === 'States.ALL' && name !== 'States.Runtime' && name !== 'States.DataLimitExceeded'),
  );
}

/** An error as a Task reports it: Lambda's errorType, and its JSON error object as the cause. */
export function errorOf(error: unknown): { name: string; cause: string } {
  if (error instanceof StatesError) return { name: error.error, cause: error.cause };
  const e = error instanceof Error ? error : new Error(String(error));
  return {
    name: e.name || 'Error',
    cause: JSON.stringify({
      errorType: e.name || 'Error',
      errorMessage: e.message,
      trace: (e.stack ?? '').split('\n'),
    }),
  };
}

async function withTimeout<T>(promise: Promise<T>, seconds: unknown, state: string): Promise<T> {
  if (typeof seconds !== 'number') return promise;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new StatesError('States.Timeout', `State ${state} ran longer than ${seconds} s`)),
          seconds * 1000,
        );
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * JSON texts of values made from that very text (a batch and its text, a task's output parsed
 * back) that nothing changes afterwards: JSON.stringify of such a value gives the text back, so
 * it is not made again.
 */
const knownTexts = new WeakMap<object, string>();

/** JSON.stringify(value), or the text `value` was made from. */
function jsonText(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    const known = knownTexts.get(value);
    if (known !== undefined) return known;
  }
  return JSON.stringify(value);
}

/** JSON.parse(text), remembered with its text. */
function parsedCopy(text: string): unknown {
  const value: unknown = JSON.parse(text);
  if (typeof value === 'object' && value !== null) knownTexts.set(value, text);
  return value;
}
