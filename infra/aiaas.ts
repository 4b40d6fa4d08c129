import type { App } from 'aws-cdk-lib';
import type { IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { ConfigurationError } from '../functions/shared/errors.js';
import type { Manifest } from '../functions/shared/manifest.js';
import type { FunctionLogLevel } from './constructs/function-defaults.js';
import { enableNag } from './nag.js';
import { ModelStack } from './stacks/model-stack.js';
import { RegistryStack } from './stacks/registry-stack.js';

export interface AiaasAppOptions {
  readonly manifest: Manifest;
  /**
   * Adopt this bucket as the registry instead of creating one (not together with `bucketName`).
   * These two mirror the `existingBucketName`/`bucketName` context settings one to one.
   *
   * @default - create the registry bucket
   */
  readonly existingBucketName?: string;
  /**
   * Name of the registry bucket to create (not together with `existingBucketName`).
   *
   * @default `<app>-registry-<account>-<region>`
   */
  readonly bucketName?: string;
  /**
   * SNS topic that receives every alarm.
   *
   * @default - alarms without actions
   */
  readonly alarmTopicArn?: string;
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
   * Run cdk-nag AwsSolutions checks at synth.
   *
   * @default true
   */
  readonly nag?: boolean;
}

export interface AiaasStacks {
  readonly registry: RegistryStack;
  /** Model stacks by model name, in manifest order. */
  readonly models: ReadonlyMap<string, ModelStack>;
}

/** CloudFormation stack names: a letter, then letters, digits and '-', at most 128 characters. */
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

export function registryStackName(appName: string): string {
  return stackName(`${appName}-Registry`);
}

/** `<app>-Model-<name>` (`_` becomes `-`, which stack names cannot contain). */
export function modelStackName(appName: string, modelName: string): string {
  return stackName(`${appName}-Model-${modelName}`);
}

function stackName(raw: string): string {
  const name = raw.replace(/_/g, '-');
  if (!STACK_NAME.test(name)) {
    throw new ConfigurationError(
      `"${name}" is not a valid CloudFormation stack name (a letter first; letters, digits and "-"; at most 128)`,
    );
  }
  return name;
}

/**
 * The aiaas CDK app from a validated manifest: `<app>-Registry` and one `<app>-Model-<name>` per
 * model. Environment-agnostic (no account or region at synth, no credentials needed).
 */
export function defineAiaas(app: App, options: AiaasAppOptions): AiaasStacks {
  const { manifest } = options;
  if (options.nag ?? true) enableNag(app);

  if (options.existingBucketName !== undefined && options.bucketName !== undefined) {
    throw new ConfigurationError(
      'Give either existingBucketName (adopt a bucket) or bucketName (create one), not both',
    );
  }
  const common = { appName: manifest.app, description: `aiaas (${manifest.app}): model registry bucket` };
  const registry = new RegistryStack(
    app,
    registryStackName(manifest.app),
    options.existingBucketName !== undefined
      ? { ...common, existingBucketName: options.existingBucketName }
      : { ...common, ...(options.bucketName !== undefined ? { bucketName: options.bucketName } : {}) },
  );

  const models = new Map<string, ModelStack>();
  const names = new Map<string, string>();
  for (const model of manifest.models) {
    const name = modelStackName(manifest.app, model.name);
    const clash = names.get(name);
    if (clash) {
      throw new ConfigurationError(
        `Models "${clash}" and "${model.name}" would both deploy as stack ${name}`,
      );
    }
    names.set(name, model.name);
    const stack = new ModelStack(app, name, {
      description: `aiaas (${manifest.app}): model ${model.name}`,
      model,
      appName: manifest.app,
      bucketName: registry.bucketName,
      ...(options.logRetention ? { logRetention: options.logRetention } : {}),
      ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    });
    if (options.alarmTopicArn) {
      const actions: IAlarmAction[] = [
        new SnsAction(Topic.fromTopicArn(stack, 'AlarmTopic', options.alarmTopicArn)),
      ];
      // Alarm actions are wired after construction so the topic import lives in the model stack.
      const { alarms } = stack.inference;
      for (const alarm of [alarms.errors, alarms.throttles, alarms.p99Duration]) {
        for (const action of actions) {
          alarm?.addAlarmAction(action);
          alarm?.addOkAction(action);
        }
      }
      for (const alarm of [...(stack.retraining?.allAlarms ?? []), ...(stack.rollout?.allAlarms ?? [])]) {
        for (const action of actions) {
          alarm.addAlarmAction(action);
          alarm.addOkAction(action);
        }
      }
    }
    // Model stacks name the bucket rather than import it, so the order is explicit:
    // `cdk deploy <app>-Model-<name>` deploys the registry first.
    stack.addStackDependency(registry, 'the registry bucket must exist before model functions read it');
    models.set(model.name, stack);
  }
  return { registry, models };
}
