/**
 * A model's batch jobs (`aiaas batch`): a Step Functions state machine whose Distributed Map reads
 * the job's CSV or JSON Lines input from the registry bucket, hands batches of rows to the model's
 * inference function (the version pinned in the execution input), writes the children's results
 * with ResultWriter, and ends with the assemble function writing the job's output and manifest.
 * The state machine may invoke exactly those two functions and use only `batch/<model>/` of the
 * registry; the assemble function may use only `batch/<model>/`. One construct that reads better
 * whole: the definition, the grants that follow from it and their cdk-nag reasons belong together.
 *
 * Execution input: BatchJobInput (functions/shared/batch/events.ts), with `features` present.
 */
import { Aws, type CfnResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { type IGrantable, PolicyStatement, type Role } from 'aws-cdk-lib/aws-iam';
import {
  Alias,
  Architecture,
  type IFunction,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Fail,
  type IItemReader,
  ItemBatcher,
  JsonPath,
  LogLevel,
  OutputType,
  ResultWriterV2,
  S3CsvItemReader,
  S3JsonLItemReader,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Timeout,
  Transformation,
  WriterConfig,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { AIAAS_BUCKET, AIAAS_MODEL } from '../../functions/shared/env.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ENTRY_POINTS } from '../../scripts/build/options.js';
import { acknowledge, acknowledgeWildcardResources } from '../nag.js';
import { paths } from '../paths.js';
import {
  APPLICATION_LOG_LEVEL,
  DEFAULT_LOG_RETENTION,
  FUNCTION_BUNDLING,
  type FunctionLogLevel,
  functionLogGroup,
  functionRole,
} from './function-defaults.js';

/** The manifest's `batch` settings of a model (functions/shared/manifest.ts). */
export interface BatchSettings {
  /** Batches scored at once: child executions, each one invocation of the model's function. */
  readonly maxConcurrency: number;
  /** Rows per batch (ItemBatcher's MaxItemsPerBatch). */
  readonly rowsPerBatch: number;
  /** Share of failed batches (after retries) the Map Run tolerates, in percent. */
  readonly toleratedFailurePercent: number;
}

/**
 * A batch's input is also cut at this many bytes: Step Functions passes at most 256 KiB to a
 * child execution, and the batch carries `BatchInput` and JSON framing besides the rows.
 */
export const MAX_BATCH_INPUT_BYTES = 240 * 1024;

/** Step Functions runs an Express child execution for at most 5 minutes. */
const EXPRESS_LIMIT = Duration.minutes(5);

/** Retries of a batch's invocation: Lambda's own errors, throttling, and an unreachable registry. */
export const SCORE_RETRY = {
  errors: [
    'Lambda.ServiceException',
    'Lambda.AWSLambdaException',
    'Lambda.SdkClientException',
    'Lambda.ClientExecutionTimeoutException',
    'Lambda.TooManyRequestsException',
    // The function's own transient error (functions/shared/errors.ts): the registry did not answer.
    'RegistryUnavailableError',
  ],
  interval: Duration.seconds(1),
  maxAttempts: 4,
  backoffRate: 2,
} as const;

/** The state names of the definition, shared with the local executor and the tests. */
export const BATCH_STATES = {
  format: 'Format',
  csv: 'ScoreCsv',
  jsonl: 'ScoreJsonLines',
  badFormat: 'BadFormat',
  assemble: 'Assemble',
  outcome: 'Outcome',
  failed: 'JobFailed',
  done: 'Done',
} as const;

export interface BatchJobProps {
  /** The model's name in the registry (`batch/<name>/` is the job's prefix). */
  readonly modelName: string;
  /** The registry bucket: the job's input, ResultWriter's files and its output live under `batch/<model>/`. */
  readonly registryBucket: IBucket;
  /**
   * What scores a batch: the model's inference function (its alias), which answers a BatchEvent
   * with a BatchResult.
   */
  readonly scorer: IFunction;
  /** The scorer's timeout: bounds a batch's Task, and decides whether children can be Express. */
  readonly scorerTimeout: Duration;
  /** The manifest's `batch` settings. */
  readonly settings: BatchSettings;
  /**
   * The state machine's name, so the CLI finds it (batchStateMachineName in
   * functions/shared/batch/events.ts).
   *
   * @default - a name CloudFormation generates
   */
  readonly stateMachineName?: string;
  /**
   * The job's final step: writes the output and manifest from ResultWriter's files
   * (BatchAssembleEvent).
   *
   * @default - a function bundled from functions/batch/assemble.ts, with its own role
   */
  readonly assembler?: IFunction;
  /**
   * How long the state machine's and the assemble function's logs are kept.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Lowest level the assemble function logs.
   *
   * @default 'INFO'
   */
  readonly logLevel?: FunctionLogLevel;
  /**
   * The state machine's logical id, fixed (set here, before the cdk-nag acknowledgements that
   * name it are computed).
   *
   * @default - CDK's
   */
  readonly stateMachineLogicalId?: string;
  /**
   * Longest a job may run before Step Functions stops it.
   *
   * @default Duration.hours(24)
   */
  readonly timeout?: Duration;
}

/**
 * One model's batch jobs: the state machine, its log group and (unless given) the assemble
 * function. Children run as Express workflows when a batch's worst case (every attempt timing
 * out, plus the retry waits) fits in their 5 minutes, else as Standard ones.
 */
export class BatchJob extends Construct {
  readonly stateMachine: StateMachine;
  readonly logGroup: LogGroup;
  /** The final step (the assemble function's alias, when this construct made the function). */
  readonly assembler: IFunction;
  /** The assemble function's role, when this construct made the function. */
  readonly assemblerRole?: Role;
  /** `batch/<model>/`: the only registry prefix the job touches. */
  readonly prefix: string;
  /** Whether the Distributed Map's children are Express (else Standard) workflows. */
  readonly childType: StateMachineType;

  constructor(scope: Construct, id: string, props: BatchJobProps) {
    super(scope, id);
    // ResultWriterV2 (with its Parameters) whatever the app's flags: the definition is the same
    // in `cdk synth` and in the throwaway stack infra/batch-definition.ts renders offline.
    this.node.setContext('@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2', true);
    const { modelName, registryBucket: bucket, settings } = props;
    checkSettings(modelName, settings);
    this.prefix = keys.batchRoot(modelName);
    const objects = bucket.arnForObjects(`${this.prefix}*`);
    const sameAccount = { StringEquals: { 's3:ResourceAccount': Aws.ACCOUNT_ID } };

    // Worst case of one child: every attempt runs to the timeout, plus each retry's wait.
    const attempts = SCORE_RETRY.maxAttempts + 1;
    let waits = 0;
    for (let i = 0; i < SCORE_RETRY.maxAttempts; i++) {
      waits += SCORE_RETRY.interval.toSeconds() * SCORE_RETRY.backoffRate ** i;
    }
    const taskTimeout = props.scorerTimeout.plus(Duration.seconds(10));
    const worstCase = attempts * taskTimeout.toSeconds() + waits;
    this.childType =
      worstCase <= EXPRESS_LIMIT.toSeconds() ? StateMachineType.EXPRESS : StateMachineType.STANDARD;

    this.assembler = props.assembler ?? this.makeAssembler(props, objects, sameAccount);
    const assemble = new LambdaInvoke(this, 'AssembleTask', {
      stateName: BATCH_STATES.assemble,
      lambdaFunction: this.assembler,
      payloadResponseOnly: true,
      payload: TaskInput.fromObject({
        job: JsonPath.objectAt('$$.Execution.Input'),
        startedAt: JsonPath.stringAt('$$.Execution.StartTime'),
        map: JsonPath.objectAt('$.map'),
      }),
      resultPath: '$.summary',
      taskTimeout: Timeout.duration(Duration.minutes(15)),
    });
    const outcome = new Choice(this, 'OutcomeChoice', { stateName: BATCH_STATES.outcome })
      .when(
        Condition.isPresent('$.map.Error'),
        new Fail(this, 'JobFailedState', {
          stateName: BATCH_STATES.failed,
          errorPath: '$.map.Error',
          causePath: '$.map.Cause',
        }),
      )
      .otherwise(new Succeed(this, 'DoneState', { stateName: BATCH_STATES.done, outputPath: '$.summary' }));
    assemble.next(outcome);

    // Only the model's prefix: CDK's own ItemReader and ResultWriter statements name the whole bucket.
    const readInput = () => [
      new PolicyStatement({ actions: ['s3:GetObject'], resources: [objects], conditions: sameAccount }),
    ];
    const writeResults = () => [
      new PolicyStatement({
        actions: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [objects],
        conditions: sameAccount,
      }),
    ];
    const source = { bucket, key: JsonPath.stringAt('$.inputKey') };
    const score = (name: string, label: string, reader: IItemReader) => {
      const batch = new LambdaInvoke(this, `${name}Batch`, {
        stateName: `${name}Batch`,
        lambdaFunction: props.scorer,
        payloadResponseOnly: true,
        retryOnServiceExceptions: false,
        taskTimeout: Timeout.duration(taskTimeout),
      });
      batch.addRetry({ ...SCORE_RETRY, errors: [...SCORE_RETRY.errors] });
      const map = new DistributedMap(this, name, {
        stateName: name,
        label,
        itemReader: reader,
        itemSelector: {
          index: JsonPath.numberAt('$$.Map.Item.Index'),
          row: JsonPath.objectAt('$$.Map.Item.Value'),
        },
        itemBatcher: new ItemBatcher({
          maxItemsPerBatch: settings.rowsPerBatch,
          maxInputBytesPerBatch: MAX_BATCH_INPUT_BYTES,
          batchInput: {
            'model.$': '$.model',
            'version.$': '$.version',
            'job.$': '$.job',
            'format.$': '$.format',
            'features.$': '$.features',
          },
        }),
        resultWriterV2: scopedTo(
          writeResults,
          new ResultWriterV2({
            bucket,
            // keys.batchResults(model, job), with the job from the execution input.
            prefix: JsonPath.format(`${this.prefix}{}/results`, JsonPath.stringAt('$.job')),
            // A succeeded batch as its output alone, a line each (failed ones keep their Input,
            // which the final step needs): not every batch's rows written back and read again.
            writerConfig: new WriterConfig({
              outputType: OutputType.JSONL,
              transformation: Transformation.COMPACT,
            }),
          }),
        ),
        maxConcurrency: settings.maxConcurrency,
        toleratedFailurePercentage: settings.toleratedFailurePercent,
        mapExecutionType: this.childType,
        resultPath: '$.map',
      });
      map.itemProcessor(batch);
      // A Map that fails (more failed batches than tolerated, an unreadable input) still gets its
      // manifest written, with the error; the execution then fails with it.
      map.addCatch(assemble, { errors: ['States.ALL'], resultPath: '$.map' });
      return map.next(assemble);
    };

    const definition = new Choice(this, 'FormatChoice', { stateName: BATCH_STATES.format })
      .when(
        Condition.stringEquals('$.format', 'csv'),
        score(BATCH_STATES.csv, 'Csv', scopedTo(readInput, new S3CsvItemReader(source))),
      )
      .when(
        Condition.stringEquals('$.format', 'jsonl'),
        score(BATCH_STATES.jsonl, 'JsonLines', scopedTo(readInput, new S3JsonLItemReader(source))),
      )
      .otherwise(
        new Fail(this, 'BadFormatState', {
          stateName: BATCH_STATES.badFormat,
          error: 'aiaas.BadJobInput',
          cause: 'The job input\'s "format" must be "csv" or "jsonl"',
        }),
      );

    // Vended-log delivery wants its group under /aws/vendedlogs/ (its resource policy stays small).
    this.logGroup = new LogGroup(this, 'Logs', {
      ...(props.stateMachineName ? { logGroupName: `/aws/vendedlogs/states/${props.stateMachineName}` } : {}),
      retention: props.logRetention ?? DEFAULT_LOG_RETENTION,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      ...(props.stateMachineName ? { stateMachineName: props.stateMachineName } : {}),
      comment: `aiaas batch jobs of model ${modelName}`,
      definitionBody: DefinitionBody.fromChainable(definition),
      stateMachineType: StateMachineType.STANDARD,
      timeout: props.timeout ?? Duration.hours(24),
      tracingEnabled: true,
      // Events, not data: rows are the user's data.
      logs: { destination: this.logGroup, level: LogLevel.ALL, includeExecutionData: false },
    });
    if (props.stateMachineLogicalId) {
      (this.stateMachine.node.defaultChild as CfnResource).overrideLogicalId(props.stateMachineLogicalId);
    }
    this.acknowledgeWildcards(objects);
  }

  /** Grants `grantee` starting this model's jobs and reading their status (for a CLI role). */
  grantStartJobs(grantee: IGrantable) {
    return this.stateMachine.grantStartExecution(grantee).combine(this.stateMachine.grantRead(grantee));
  }

  private makeAssembler(
    props: BatchJobProps,
    objects: string,
    sameAccount: Record<string, unknown>,
  ): IFunction {
    const role = functionRole(this, 'AssembleRole', `aiaas batch jobs of model ${props.modelName}: assemble`);
    (this as { assemblerRole?: Role }).assemblerRole = role;
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'OwnBatchObjects',
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
        resources: [objects],
        conditions: sameAccount,
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ListOwnBatchPrefix',
        actions: ['s3:ListBucket'],
        resources: [props.registryBucket.bucketArn],
        conditions: { ...sameAccount, StringLike: { 's3:prefix': [`${this.prefix}*`] } },
      }),
    );
    const logLevel = props.logLevel ?? 'INFO';
    const fn = new NodejsFunction(this, 'AssembleFunction', {
      description: `aiaas batch jobs: assemble the output of model ${props.modelName}`,
      entry: ENTRY_POINTS.batch,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      // It reads the whole input and every result file of a job.
      memorySize: 2048,
      timeout: Duration.minutes(15),
      role,
      logGroup: functionLogGroup(this, 'AssembleLogs', props.logRetention ?? DEFAULT_LOG_RETENTION, role),
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: APPLICATION_LOG_LEVEL[logLevel],
      systemLogLevelV2: SystemLogLevel.INFO,
      environment: {
        [AIAAS_BUCKET]: props.registryBucket.bucketName,
        [AIAAS_MODEL]: props.modelName,
        POWERTOOLS_SERVICE_NAME: `aiaas-batch-${props.modelName}`,
        POWERTOOLS_LOG_LEVEL: logLevel,
        NODE_OPTIONS: '--enable-source-maps',
      },
      // Step Functions retries the step; Lambda's own async retries do not apply.
      retryAttempts: 0,
      projectRoot: paths.root,
      depsLockFilePath: paths.lockFile,
      bundling: FUNCTION_BUNDLING,
    });
    // Invoked through an alias, as the model function is: the state machine's grant names exactly
    // it (an unqualified function's grant also covers `<arn>:*`).
    return new Alias(this, 'AssembleAlias', { aliasName: 'live', version: fn.currentVersion });
  }

  /**
   * cdk-nag IAM5: only the wildcards that cannot be narrowed, each named exactly, so any other
   * wildcard added later still fails synth.
   */
  private acknowledgeWildcards(objects: string): void {
    acknowledgeWildcardResources(
      this,
      [objects],
      "The wildcard is the trailing key wildcard of this model's own batch prefix (batch/<model>/): a job's input, ResultWriter's files and its output are named per job at run time, and no other prefix is granted.",
    );
    acknowledge(
      this,
      'AwsSolutions-IAM5[Resource::*]',
      'Only the actions that support no resource-level permissions: CloudWatch Logs vended log delivery (logs:CreateLogDelivery and the other *LogDelivery, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups), which Step Functions logging requires, and X-Ray trace segments (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets).',
    );
    // The Distributed Map's own grants (added by CDK): its child executions of this state machine.
    const stack = Stack.of(this);
    const policies = this.stateMachine.node.findAll().filter((c) => c.node.id === 'DistributedMapPolicy');
    for (const policy of policies) {
      const document = stack.resolve((policy as unknown as { document: unknown }).document) as {
        Statement?: { Resource?: unknown }[];
      };
      const resources = (document.Statement ?? []).flatMap((s) =>
        Array.isArray(s.Resource) ? s.Resource : s.Resource === undefined ? [] : [s.Resource],
      );
      acknowledgeWildcardResources(
        this,
        resources as string[],
        "The wildcard is the execution id of this state machine's own executions (execution:<state machine>:* and the Map Run's labelled child executions): a Distributed Map starts, describes, stops and redrives its child executions, whose ids are made at run time.",
      );
    }
  }
}

/** The manifest's limits, checked again for callers of the construct. */
function checkSettings(model: string, s: BatchSettings): void {
  const bad = (field: string, rule: string) => new Error(`Model "${model}": batch.${field} must be ${rule}`);
  if (!Number.isInteger(s.maxConcurrency) || s.maxConcurrency < 1 || s.maxConcurrency > 10_000) {
    throw bad(
      'maxConcurrency',
      'an integer from 1 to 10000 (Distributed Map runs at most 10,000 children at once)',
    );
  }
  if (!Number.isInteger(s.rowsPerBatch) || s.rowsPerBatch < 1 || s.rowsPerBatch > 10_000) {
    throw bad('rowsPerBatch', 'an integer from 1 to 10000');
  }
  if (!(s.toleratedFailurePercent >= 0 && s.toleratedFailurePercent <= 100)) {
    throw bad('toleratedFailurePercent', 'a number from 0 to 100');
  }
}

/**
 * A CDK ItemReader or ResultWriter whose grants are `statements` instead of its own, which name the
 * whole bucket: the model's prefix only.
 */
function scopedTo<T extends { providePolicyStatements(): PolicyStatement[] }>(
  statements: () => PolicyStatement[],
  part: T,
): T {
  part.providePolicyStatements = statements;
  return part;
}
