/**
 * The Step Functions API of the local stack, for batch jobs: the calls `aiaas batch` makes to AWS
 * (StartExecution, DescribeExecution, ListStateMachines, ListMapRuns, DescribeMapRun; AWS JSON 1.0
 * over HTTP, as @aws-sdk/client-sfn speaks it) answered on loopback by running each job on the
 * local executor (scripts/local/batch/executor.ts). So the CLI has one code path, deployed or local:
 * only the endpoint differs. One state machine per model of the manifest and the registry, named
 * batchStateMachineName(app, model). Executions live in memory while the stack runs (the job's
 * files stay in the registry). Unknown calls answer `UnknownOperationException`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostProblem } from '../../cli/loopback-host.js';
import { type BatchJobInput, batchStateMachineName } from '../../functions/shared/batch/events.js';
import type { Manifest } from '../../functions/shared/manifest.js';
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { LocalBatchJobOptions, LocalBatchProgress, LocalBatchResult } from './batch/executor.js';

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
const MAX_BODY = 1024 * 1024;

export interface StepFunctionsApiOptions {
  readonly port?: number;
  readonly s3: { readonly endpoint: string; readonly bucket: string };
  readonly registry: ModelRegistry;
  /** The models' manifest: app name, and each model's `batch` settings and timeout. */
  readonly manifest: Pick<Manifest, 'app' | 'models'>;
  /** Runs one job. @default runLocalBatchJob (imported on first use) */
  readonly run?: (options: LocalBatchJobOptions) => Promise<LocalBatchResult>;
  /** Told of every job's progress (tests use it to act mid-job). */
  readonly onProgress?: (job: string, progress: LocalBatchProgress) => void;
  /** Where the executor's notes go. @default stderr */
  readonly log?: (line: string) => void;
}

export interface StepFunctionsApi {
  readonly url: string;
  /** Resolves when every job started so far has ended. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

interface Execution {
  readonly arn: string;
  readonly stateMachineArn: string;
  readonly name: string;
  readonly input: string;
  readonly startDate: Date;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  stopDate?: Date;
  output?: string;
  error?: string;
  cause?: string;
  progress?: LocalBatchProgress;
  done: Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const arnOf = (kind: string, ...parts: string[]) =>
  `arn:aws:states:${REGION}:${ACCOUNT}:${kind}:${parts.join(':')}`;
const seconds = (date: Date) => date.getTime() / 1000;

/** Starts the API on 127.0.0.1 (port 0: any free one). */
export async function startStepFunctionsApi(options: StepFunctionsApiOptions): Promise<StepFunctionsApi> {
  const executions = new Map<string, Execution>();
  const { app } = options.manifest;
  // The executor, once a job has run: its warm execution environments stop with this API.
  let executor: typeof import('./batch/executor.js') | undefined;

  const machines = async () => {
    const names = new Set([
      ...options.manifest.models.map((m) => m.name),
      ...(await options.registry.listModels()),
    ]);
    return [...names].map((model) => {
      const name = batchStateMachineName(app, model);
      return { model, name, arn: arnOf('stateMachine', name) };
    });
  };
  const execution = (arn: unknown): Execution => {
    const found = typeof arn === 'string' ? executions.get(arn) : undefined;
    if (!found) throw new ApiError('ExecutionDoesNotExist', `Execution does not exist: ${String(arn)}`);
    return found;
  };

  const operations: Record<string, (body: Record<string, unknown>) => Promise<unknown>> = {
    async ListStateMachines() {
      return {
        stateMachines: (await machines()).map((m) => ({
          stateMachineArn: m.arn,
          name: m.name,
          type: 'STANDARD',
          creationDate: 0,
        })),
      };
    },
    async StartExecution(body) {
      const machine = (await machines()).find((m) => m.arn === body.stateMachineArn);
      if (!machine) {
        throw new ApiError(
          'StateMachineDoesNotExist',
          `State Machine Does Not Exist: '${String(body.stateMachineArn)}'`,
        );
      }
      const name = typeof body.name === 'string' ? body.name : crypto.randomUUID();
      const arn = arnOf('execution', machine.name, name);
      if (executions.has(arn))
        throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
      const input = typeof body.input === 'string' ? body.input : '{}';
      let parsed: BatchJobInput;
      try {
        parsed = JSON.parse(input) as BatchJobInput;
      } catch {
        throw new ApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: not JSON');
      }
      const spec = options.manifest.models.find((m) => m.name === machine.model) ?? {
        name: machine.model,
        timeoutSeconds: 30,
        fastPath: 'auto' as const,
      };
      executor ??= options.run ? undefined : await import('./batch/executor.js');
      const run = options.run ?? executor!.runLocalBatchJob;
      const started: Execution = {
        arn,
        stateMachineArn: machine.arn,
        name,
        input,
        startDate: new Date(),
        status: 'RUNNING',
        done: Promise.resolve(),
      };
      started.done = run({
        model: spec,
        input: parsed,
        s3: options.s3,
        stateMachineName: machine.name,
        onProgress: (progress) => {
          started.progress = progress;
          options.onProgress?.(name, progress);
        },
        ...(options.log ? { log: options.log } : {}),
      }).then(
        (result) => {
          started.status = result.status;
          started.stopDate = result.stopDate;
          started.progress = result.progress;
          if (result.output !== undefined) started.output = JSON.stringify(result.output);
          if (result.error !== undefined) started.error = result.error;
          if (result.cause !== undefined) started.cause = result.cause;
        },
        (error: Error) => {
          started.status = 'FAILED';
          started.stopDate = new Date();
          started.error = error.name;
          started.cause = error.message;
        },
      );
      executions.set(arn, started);
      return { executionArn: arn, startDate: seconds(started.startDate) };
    },
    async DescribeExecution(body) {
      const e = execution(body.executionArn);
      return {
        executionArn: e.arn,
        stateMachineArn: e.stateMachineArn,
        name: e.name,
        status: e.status,
        startDate: seconds(e.startDate),
        ...(e.stopDate ? { stopDate: seconds(e.stopDate) } : {}),
        input: e.input,
        ...(e.output !== undefined ? { output: e.output } : {}),
        ...(e.error !== undefined ? { error: e.error } : {}),
        ...(e.cause !== undefined ? { cause: e.cause } : {}),
      };
    },
    async ListMapRuns(body) {
      const e = execution(body.executionArn);
      if (e.progress?.rows === undefined) return { mapRuns: [] };
      return {
        mapRuns: [
          {
            executionArn: e.arn,
            mapRunArn: `${e.arn.replace(':execution:', ':mapRun:')}/map`,
            stateMachineArn: e.stateMachineArn,
            startDate: seconds(e.startDate),
          },
        ],
      };
    },
    async DescribeMapRun(body) {
      const mapRunArn = String(body.mapRunArn);
      const e = execution(mapRunArn.replace(':mapRun:', ':execution:').replace(/\/map$/, ''));
      const p = e.progress ?? { rowsDone: 0, rowsFailed: 0, batchesDone: 0, batchesFailed: 0 };
      const total = p.rows ?? 0;
      const counts = {
        pending: Math.max(0, total - p.rowsDone),
        running: 0,
        succeeded: p.rowsDone - p.rowsFailed,
        failed: p.rowsFailed,
        timedOut: 0,
        aborted: 0,
        total,
        resultsWritten: e.status === 'RUNNING' ? 0 : p.rowsDone,
        failuresNotRedrivable: 0,
        pendingRedrive: 0,
      };
      return {
        mapRunArn,
        executionArn: e.arn,
        status: e.status,
        startDate: seconds(e.startDate),
        ...(e.stopDate ? { stopDate: seconds(e.stopDate) } : {}),
        maxConcurrency: 0,
        toleratedFailurePercentage: 0,
        toleratedFailureCount: 0,
        itemCounts: counts,
        executionCounts: {
          ...counts,
          total: p.batchesDone,
          succeeded: p.batchesDone - p.batchesFailed,
          failed: p.batchesFailed,
          pending: 0,
        },
      };
    },
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => {
      const answer = (status: number, body: unknown) => {
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-requestid': crypto.randomUUID(),
        });
        res.end(JSON.stringify(body));
      };
      void (async () => {
        try {
          const foreignHost = hostProblem(req, 'The local Step Functions API');
          if (foreignHost) throw new ApiError('AccessDeniedException', foreignHost, 403);
          if (size > MAX_BODY) throw new ApiError('ValidationException', 'Request body too large');
          const target = String(req.headers['x-amz-target'] ?? '');
          const operation = operations[target.replace(/^AWSStepFunctions\./, '')];
          if (req.method !== 'POST' || !target.startsWith('AWSStepFunctions.') || !operation) {
            throw new ApiError('UnknownOperationException', `Unknown operation ${target || '(none)'}`);
          }
          const text = Buffer.concat(chunks).toString('utf8');
          answer(200, await operation(text ? (JSON.parse(text) as Record<string, unknown>) : {}));
        } catch (error) {
          if (error instanceof ApiError) answer(error.status, { __type: error.type, message: error.message });
          else answer(500, { __type: 'InternalFailure', message: (error as Error).message });
        }
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async settled() {
      await Promise.all([...executions.values()].map((e) => e.done));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await executor?.stopScorers(options.s3.endpoint);
    },
  };
}
