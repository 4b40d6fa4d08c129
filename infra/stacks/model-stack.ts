import { CfnOutput, Duration, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import type { IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import { type CfnFunction, FunctionUrlAuthType, HttpMethod } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Bucket, type IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { batchStateMachineName } from '../../functions/shared/batch/events.js';
import { datasetPrefix, type ModelSpec } from '../../functions/shared/manifest.js';
import { BatchJob } from '../constructs/batch-job.js';
import type { FunctionLogLevel } from '../constructs/function-defaults.js';
import { assertFunctionUrlRegion } from '../constructs/function-url-regions.js';
import { type ModelAccess, ModelFunction } from '../constructs/model-function.js';
import { isOwnDatasetPrefix } from '../constructs/registry-grants.js';
import { RetrainingFunction } from '../constructs/retraining-function.js';
import { RolloutFunction } from '../constructs/rollout-function.js';
import { TfjsRuntimeLayer } from '../constructs/tfjs-runtime-layer.js';

export interface ModelStackProps extends StackProps {
  /** The model's manifest entry (validated). */
  readonly model: ModelSpec;
  /**
   * The manifest's `app`: names the model's batch state machine (batchStateMachineName).
   *
   * @default 'aiaas'
   */
  readonly appName?: string;
  /**
   * Name of the registry bucket (RegistryStack.bucketName: a plain name, or one built from
   * `AWS::AccountId`/`AWS::Region`). The stack imports the bucket by this name rather than taking
   * the registry stack's bucket object, whose references would become a CloudFormation export that
   * pins the registry stack and ties every model stack's deploy to it.
   */
  readonly bucketName: string;
  /**
   * How long the functions' logs are kept.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Lowest level logged, by Powertools and by Lambda's application log filter.
   *
   * @default 'INFO'
   */
  readonly logLevel?: FunctionLogLevel;
  /**
   * Where the model's alarms are sent.
   *
   * @default - no actions
   */
  readonly alarmActions?: readonly IAlarmAction[];
}

/**
 * Everything one model needs, deployable alone (`cdk deploy <app>-Model-<name>`): the inference
 * function behind its alias and function URL, the tfjs runtime layer it uses, alarms, and
 * retraining and the rollout function, each with its schedule, when the manifest asks for them.
 */
export class ModelStack extends Stack {
  readonly inference: ModelFunction;
  readonly retraining?: RetrainingFunction;
  /** The rollout function, its schedule and alarms, when the manifest has a `rollout` plan. */
  readonly rollout?: RolloutFunction;
  readonly runtimeLayer?: TfjsRuntimeLayer;
  /** The model's batch jobs, when the manifest has `batch`. */
  readonly batch?: BatchJob;
  /** The registry bucket, imported by name into this stack (see ModelStackProps.bucketName). */
  readonly registryBucket: IBucket;

  constructor(scope: Construct, id: string, props: ModelStackProps) {
    super(scope, id, props);
    const { model } = props;
    // Before any asset is bundled: a region without function URLs can never deploy this stack.
    assertFunctionUrlRegion(this, `Model "${model.name}" (stack ${this.stackName})`);
    Tags.of(this).add('aiaas:model', model.name);

    const dataset = datasetPrefix(model);
    if (model.retrain && !isOwnDatasetPrefix(model.name, dataset)) {
      throw new Error(
        `Model "${model.name}": field "retrain.datasetPrefix": "${dataset}" must be datasets/${model.name}/ or a folder below it, without wildcards or ".."`,
      );
    }

    // One layer resource per model stack; its asset is bundled once per synth and uploaded once,
    // and keeping it in this stack lets the model deploy (and `sam local invoke`) on its own.
    if (model.runtime === 'wasm' || model.retrain) {
      this.runtimeLayer = new TfjsRuntimeLayer(this, 'TfjsRuntime');
    }
    // An import adds no resource: the name (plain or from pseudo parameters) resolves in this stack.
    this.registryBucket = Bucket.fromBucketName(this, 'RegistryBucket', props.bucketName);

    this.inference = new ModelFunction(this, 'Inference', {
      modelName: model.name,
      registryBucket: this.registryBucket,
      runtime:
        model.runtime === 'wasm' && this.runtimeLayer
          ? { kind: 'wasm', layer: this.runtimeLayer }
          : { kind: 'native' },
      aliasName: model.alias,
      memorySize: model.memoryMiB,
      timeout: Duration.seconds(model.timeoutSeconds),
      provisionedConcurrency: model.provisionedConcurrency,
      access: modelAccess(model),
      aliasCheckInterval: Duration.seconds(model.aliasCheckSeconds),
      fastPath: model.fastPath,
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
      ...(props.logLevel ? { logLevel: props.logLevel } : {}),
      ...(props.alarmActions ? { alarmActions: props.alarmActions } : {}),
    });

    if (model.retrain && this.runtimeLayer) {
      this.retraining = new RetrainingFunction(this, 'Retraining', {
        modelName: model.name,
        registryBucket: this.registryBucket,
        runtimeLayer: this.runtimeLayer,
        schedule: model.retrain.schedule,
        datasetPrefix: dataset,
        modelSpec: model,
        memorySize: model.retrain.memoryMiB,
        timeout: Duration.seconds(model.retrain.timeoutSeconds),
        reservedConcurrency: model.retrain.reservedConcurrency,
        ...(props.logRetention ? { logRetention: props.logRetention } : {}),
        ...(props.logLevel ? { logLevel: props.logLevel } : {}),
        ...(props.alarmActions ? { alarmActions: props.alarmActions } : {}),
      });
    }

    if (model.rollout) {
      this.rollout = new RolloutFunction(this, 'Rollout', {
        modelName: model.name,
        aliasName: model.alias,
        registryBucket: this.registryBucket,
        modelSpec: model,
        schedule: model.rollout.schedule,
        ...(props.logRetention ? { logRetention: props.logRetention } : {}),
        ...(props.logLevel ? { logLevel: props.logLevel } : {}),
        ...(props.alarmActions ? { alarmActions: props.alarmActions } : {}),
      });
    }

    // Fixed logical ids (one of each per stack), so `sam local invoke -t cdk.out/<stack>.template.json
    // InferenceFunction` and the docs do not depend on CDK's hash suffixes.
    (this.inference.function.node.defaultChild as CfnFunction).overrideLogicalId('InferenceFunction');
    if (this.retraining) {
      (this.retraining.function.node.defaultChild as CfnFunction).overrideLogicalId('RetrainingFunction');
    }
    if (this.rollout) {
      (this.rollout.function.node.defaultChild as CfnFunction).overrideLogicalId('RolloutFunction');
    }

    new CfnOutput(this, 'FunctionUrl', {
      value: this.inference.url.url,
      description: `Function URL of model ${model.name} (alias ${model.alias}, auth ${model.auth})`,
    });
    new CfnOutput(this, 'FunctionName', {
      value: this.inference.function.functionName,
      description: 'Inference function (for logs and metrics)',
    });

    if (model.batch) {
      // Batches go to the alias, so they run the code the function URL runs.
      this.batch = new BatchJob(this, 'Batch', {
        modelName: model.name,
        registryBucket: this.registryBucket,
        scorer: this.inference.alias,
        scorerTimeout: Duration.seconds(model.timeoutSeconds),
        settings: model.batch,
        stateMachineName: batchStateMachineName(props.appName ?? 'aiaas', model.name),
        stateMachineLogicalId: 'BatchStateMachine',
        ...(props.logRetention ? { logRetention: props.logRetention } : {}),
        ...(props.logLevel ? { logLevel: props.logLevel } : {}),
      });
      new CfnOutput(this, 'BatchStateMachineArn', {
        value: this.batch.stateMachine.stateMachineArn,
        description: `Batch jobs of model ${model.name} (aiaas batch)`,
      });
    }
  }
}

/** The function URL's access from the manifest (which has already checked the auth NONE rules). */
function modelAccess(model: ModelSpec): ModelAccess {
  if (model.auth !== 'NONE') {
    return {
      authType: FunctionUrlAuthType.AWS_IAM,
      ...(model.reservedConcurrency !== undefined ? { reservedConcurrency: model.reservedConcurrency } : {}),
    };
  }
  if (!model.cors || model.reservedConcurrency === undefined) {
    throw new Error(`Model "${model.name}": auth NONE needs cors and reservedConcurrency`);
  }
  return {
    authType: FunctionUrlAuthType.NONE,
    reservedConcurrency: model.reservedConcurrency,
    cors: {
      allowedOrigins: model.cors.allowOrigins,
      allowedMethods: [HttpMethod.GET, HttpMethod.POST],
      allowedHeaders: model.cors.allowHeaders ?? ['content-type'],
      ...(model.cors.maxAgeSeconds !== undefined
        ? { maxAge: Duration.seconds(model.cors.maxAgeSeconds) }
        : {}),
    },
  };
}
