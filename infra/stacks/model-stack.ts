import { CfnOutput, Duration, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import type { IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import { type CfnFunction, FunctionUrlAuthType, HttpMethod } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { datasetPrefix, type ModelSpec } from '../../functions/shared/manifest.js';
import type { FunctionLogLevel } from '../constructs/function-defaults.js';
import { assertFunctionUrlRegion } from '../constructs/function-url-regions.js';
import { ModelFunction } from '../constructs/model-function.js';
import { RetrainingFunction } from '../constructs/retraining-function.js';
import { TfjsRuntimeLayer } from '../constructs/tfjs-runtime-layer.js';

export interface ModelStackProps extends StackProps {
  /** The model's manifest entry (validated). */
  readonly model: ModelSpec;
  /** Registry bucket name (see RegistryStack.bucketName). */
  readonly bucketName: string;
  /**
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
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

/** Safe dataset prefixes: relative key prefixes outside `models/`, ending in `/`, no wildcards. */
const DATASET_PREFIX = /^(?!models\/)(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/-]*\/$/;

/**
 * Everything one model needs, deployable alone (`cdk deploy <app>-Model-<name>`): the inference
 * function behind its alias and function URL, the tfjs runtime layer it uses, alarms, and
 * retraining with its schedule when the manifest asks for it.
 */
export class ModelStack extends Stack {
  readonly inference: ModelFunction;
  readonly retraining?: RetrainingFunction;
  readonly runtimeLayer?: TfjsRuntimeLayer;

  constructor(scope: Construct, id: string, props: ModelStackProps) {
    super(scope, id, props);
    const { model } = props;
    // Before any asset is bundled: a region without function URLs can never deploy this stack.
    assertFunctionUrlRegion(this, `Model "${model.name}" (stack ${this.stackName})`);
    Tags.of(this).add('aiaas:model', model.name);

    const dataset = datasetPrefix(model);
    if (model.retrain && !DATASET_PREFIX.test(dataset)) {
      throw new Error(
        `Model "${model.name}": field "retrain.datasetPrefix": "${dataset}" must be a key prefix ending in "/", outside models/, without wildcards or ".."`,
      );
    }

    // One layer resource per model stack; its asset is bundled once per synth and uploaded once,
    // and keeping it in this stack lets the model deploy (and `sam local invoke`) on its own.
    if (model.runtime === 'wasm' || model.retrain) {
      this.runtimeLayer = new TfjsRuntimeLayer(this, 'TfjsRuntime');
    }

    this.inference = new ModelFunction(this, 'Inference', {
      modelName: model.name,
      bucketName: props.bucketName,
      runtime: model.runtime,
      ...(this.runtimeLayer ? { runtimeLayer: this.runtimeLayer } : {}),
      aliasName: model.alias,
      memorySize: model.memoryMiB,
      timeout: Duration.seconds(model.timeoutSeconds),
      ...(model.reservedConcurrency !== undefined ? { reservedConcurrency: model.reservedConcurrency } : {}),
      provisionedConcurrency: model.provisionedConcurrency,
      authType: model.auth === 'NONE' ? FunctionUrlAuthType.NONE : FunctionUrlAuthType.AWS_IAM,
      ...(model.cors
        ? {
            cors: {
              allowedOrigins: model.cors.allowOrigins,
              allowedMethods: [HttpMethod.GET, HttpMethod.POST],
              allowedHeaders: model.cors.allowHeaders ?? ['content-type'],
              ...(model.cors.maxAgeSeconds !== undefined
                ? { maxAge: Duration.seconds(model.cors.maxAgeSeconds) }
                : {}),
            },
          }
        : {}),
      aliasCheckInterval: Duration.seconds(model.aliasCheckSeconds),
      fastPath: model.fastPath,
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
      ...(props.logLevel ? { logLevel: props.logLevel } : {}),
      ...(props.alarmActions ? { alarmActions: props.alarmActions } : {}),
    });

    if (model.retrain && this.runtimeLayer) {
      this.retraining = new RetrainingFunction(this, 'Retraining', {
        modelName: model.name,
        bucketName: props.bucketName,
        runtimeLayer: this.runtimeLayer,
        schedule: model.retrain.schedule,
        datasetPrefix: dataset,
        modelSpec: model,
        memorySize: model.retrain.memoryMiB,
        timeout: Duration.seconds(model.retrain.timeoutSeconds),
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

    new CfnOutput(this, 'FunctionUrl', {
      value: this.inference.url.url,
      description: `Function URL of model ${model.name} (alias ${model.alias}, auth ${model.auth})`,
    });
    new CfnOutput(this, 'FunctionName', {
      value: this.inference.function.functionName,
      description: 'Inference function (for logs and metrics)',
    });
  }
}
