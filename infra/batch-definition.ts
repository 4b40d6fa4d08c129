/**
 * The batch state machine's definition (Amazon States Language) as plain JSON, without a deploy:
 * `renderBatchDefinition` builds infra/constructs/batch-job.ts in a throwaway stack, with placeholder
 * ARNs for the two functions, and evaluates the few CloudFormation intrinsics left in it;
 * `definitionFromTemplate` does the same for a synthesized template. The local executor and the
 * tests run exactly what `cdk synth` deploys.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import type { CfnStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { BatchJob, type BatchSettings } from './constructs/batch-job.js';
import { paths } from './paths.js';

/** An ASL document (only its shape is typed here; the executor reads what it needs). */
export interface AslDefinition {
  readonly StartAt: string;
  readonly States: Record<string, Record<string, unknown>>;
  readonly [field: string]: unknown;
}

/** Where a rendered definition points: the placeholders standing for AWS resources. */
export interface RenderedBatchDefinition {
  readonly definition: AslDefinition;
  /** The scorer's ARN in the definition: invocations of it score a batch. */
  readonly scorerArn: string;
  /** The assemble function's ARN in the definition. */
  readonly assemblerArn: string;
  /** The bucket named by the ItemReader and the ResultWriter. */
  readonly bucket: string;
}

/** The pseudo parameters a rendered definition is evaluated with (the partition matters: `arn:aws:`). */
export const PLACEHOLDER_ENV = { partition: 'aws', region: 'us-east-1', account: '000000000000' } as const;

/** The model's state machine as deployed, rendered offline with placeholder ARNs. */
export function renderBatchDefinition(options: {
  readonly model: string;
  readonly settings: BatchSettings;
  /** The model function's timeout (the manifest's `timeoutSeconds`). */
  readonly scorerTimeoutSeconds: number;
  readonly bucket: string;
}): RenderedBatchDefinition {
  const { partition, region, account } = PLACEHOLDER_ENV;
  // The feature flags `cdk synth` uses (cdk.json), so the definition is the deployed one to the byte.
  const cdkJson = JSON.parse(readFileSync(join(paths.root, 'cdk.json'), 'utf8')) as { context?: object };
  const app = new App({ context: { ...cdkJson.context } });
  const stack = new Stack(app, 'BatchDefinition', { env: { account, region } });
  const arn = (name: string) => `arn:${partition}:lambda:${region}:${account}:function:${name}`;
  const scorerArn = arn(`aiaas-${options.model}-inference:live`);
  const assemblerArn = arn(`aiaas-${options.model}-batch-assemble`);
  const job = new BatchJob(stack, 'Batch', {
    modelName: options.model,
    registryBucket: Bucket.fromBucketName(stack, 'Registry', options.bucket),
    scorer: LambdaFunction.fromFunctionAttributes(stack, 'Scorer', {
      functionArn: scorerArn,
      sameEnvironment: true,
    }),
    scorerTimeout: Duration.seconds(options.scorerTimeoutSeconds),
    assembler: LambdaFunction.fromFunctionAttributes(stack, 'Assembler', {
      functionArn: assemblerArn,
      sameEnvironment: true,
    }),
    settings: options.settings,
  });
  const cfn = job.stateMachine.node.defaultChild as CfnStateMachine;
  const text = evaluateIntrinsics(stack.resolve(cfn.definitionString), {});
  if (typeof text !== 'string') throw new Error('The batch definition did not resolve to a string');
  return { definition: JSON.parse(text) as AslDefinition, scorerArn, assemblerArn, bucket: options.bucket };
}

/**
 * The definition of state machine `logicalId` in a synthesized template, with `Ref`/`Fn::GetAtt`
 * of other resources replaced by `refs[logicalId]` (a placeholder ARN or name of yours) and the
 * pseudo parameters by PLACEHOLDER_ENV.
 */
export function definitionFromTemplate(
  template: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> },
  logicalId: string,
  refs: Readonly<Record<string, string>>,
): AslDefinition {
  const resource = template.Resources[logicalId];
  if (resource?.Type !== 'AWS::StepFunctions::StateMachine') {
    throw new Error(`${logicalId} is not a state machine of the template`);
  }
  const text = evaluateIntrinsics(resource.Properties?.DefinitionString, refs);
  if (typeof text !== 'string')
    throw new Error(`${logicalId}'s DefinitionString did not resolve to a string`);
  return JSON.parse(text) as AslDefinition;
}

/** Evaluates Fn::Join, Fn::Select, Fn::Split, Ref and Fn::GetAtt (by `refs`) and pseudo parameters. */
export function evaluateIntrinsics(value: unknown, refs: Readonly<Record<string, string>>): unknown {
  const { partition, region, account } = PLACEHOLDER_ENV;
  const pseudo: Record<string, string> = {
    'AWS::Partition': partition,
    'AWS::Region': region,
    'AWS::AccountId': account,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 1) {
      const [key, arg] = entries[0]!;
      if (key === 'Ref') {
        const name = String(arg);
        const found = pseudo[name] ?? refs[name];
        if (found === undefined) throw new Error(`No value for Ref ${name}`);
        return found;
      }
      if (key === 'Fn::GetAtt') {
        const [id, attribute] = arg as [string, string];
        const found = refs[`${id}.${attribute}`] ?? refs[id];
        if (found === undefined) throw new Error(`No value for Fn::GetAtt ${id}.${attribute}`);
        return found;
      }
      if (key === 'Fn::Join') {
        const [separator, parts] = arg as [string, unknown[]];
        return (walk(parts) as unknown[]).map(String).join(separator);
      }
      if (key === 'Fn::Select') {
        const [index, list] = arg as [number | string, unknown];
        return (walk(list) as unknown[])[Number(index)];
      }
      if (key === 'Fn::Split') {
        const [separator, source] = arg as [string, unknown];
        return String(walk(source)).split(separator);
      }
    }
    return Object.fromEntries(entries.map(([k, x]) => [k, walk(x)]));
  };
  return walk(value);
}
