import { App, Stack } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { FunctionUrlAuthType } from 'aws-cdk-lib/aws-lambda';
import { Bucket, type CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../functions/shared/manifest.js';
import { REGIONS_WITHOUT_FUNCTION_URLS } from '../../infra/constructs/function-url-regions.js';
import { type ModelAccess, ModelFunction } from '../../infra/constructs/model-function.js';
import { RegistryGrants } from '../../infra/constructs/registry-grants.js';
import { ModelStack } from '../../infra/stacks/model-stack.js';
import { buildApp, cdkContext, exampleManifest, type SynthResult, tempDir } from './helpers.js';

/** The example model plus the variants the manifest allows, in one app (bundled once). */
function fleet() {
  const example = exampleManifest() as { app: string; models: Record<string, unknown>[] };
  return {
    app: example.app,
    models: [
      ...example.models,
      { name: 'iris', reservedConcurrency: 10, provisionedConcurrency: 2, aliasCheckSeconds: 30 },
      {
        name: 'demo_public',
        auth: 'NONE',
        cors: { allowOrigins: ['https://demo.example.com'], maxAgeSeconds: 300 },
        reservedConcurrency: 5,
      },
      { name: 'big', runtime: 'native', memoryMiB: 3008, timeoutSeconds: 60 },
      // The example model, with runs that never overlap.
      {
        ...example.models[0],
        name: 'serial',
        retrain: {
          ...(example.models[0]?.retrain as object),
          datasetPrefix: 'datasets/serial/',
          reservedConcurrency: 1,
        },
      },
    ],
  };
}

let result: SynthResult;
let diabetes: Template;
let iris: Template;
let publicModel: Template;
let native: Template;

beforeAll(() => {
  result = buildApp(fleet());
  diabetes = Template.fromStack(result.models.get('diabetes')!);
  iris = Template.fromStack(result.models.get('iris')!);
  publicModel = Template.fromStack(result.models.get('demo_public')!);
  native = Template.fromStack(result.models.get('big')!);
}, 180_000);

/** A CloudFormation value with its intrinsics flattened to text, to compare ARNs. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(text).join('');
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if ('Fn::Join' in object) {
      const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
      return parts.map(text).join(separator);
    }
    if ('Ref' in object) return `<${object.Ref}>`;
    if ('Fn::GetAtt' in object) return `<${(object['Fn::GetAtt'] as string[]).join('.')}>`;
  }
  return JSON.stringify(value);
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** Every statement of the policies attached to the role whose logical id starts with `rolePrefix`. */
function statementsOf(template: Template, rolePrefix: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((policy) =>
      (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref.startsWith(rolePrefix)),
    )
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

const actions = (statement: Statement) => [statement.Action].flat();
const resources = (statement: Statement) => [statement.Resource].flat().map(text);
const BUCKET = 'arn:<AWS::Partition>:s3:::aiaas-registry-<AWS::AccountId>-<AWS::Region>';

describe('model stacks', () => {
  it('are one per model, named <app>-Model-<name> ("_" becomes "-")', () => {
    expect([...result.models.values()].map((stack) => stack.stackName)).toEqual([
      'aiaas-Model-diabetes',
      'aiaas-Model-iris',
      'aiaas-Model-demo-public',
      'aiaas-Model-big',
      'aiaas-Model-serial',
    ]);
    for (const stack of result.models.values()) {
      expect(stack.dependencies).toContain(result.registry);
    }
  });

  it('import the registry bucket by name: no CloudFormation export ties them to the registry stack', () => {
    for (const stack of result.models.values()) {
      expect(JSON.stringify(Template.fromStack(stack).toJSON())).not.toContain('Fn::ImportValue');
      expect(stack.registryBucket.bucketName).toBe(result.registry.bucketName);
    }
    const outputs = Template.fromStack(result.registry).toJSON().Outputs as Record<string, object>;
    for (const output of Object.values(outputs)) expect(output).not.toHaveProperty('Export');
  });

  it('run the inference function on Node.js 24, arm64, with the manifest sizing', () => {
    diabetes.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 1024,
      Timeout: 30,
    });
    native.hasResourceProperties('AWS::Lambda::Function', {
      PackageType: 'Image',
      Architectures: ['arm64'],
      MemorySize: 3008,
      Timeout: 60,
      Code: { ImageUri: Match.anyValue() },
    });
  });

  it('set the environment contract of the inference function', () => {
    diabetes.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('inference'),
      Environment: {
        Variables: {
          AIAAS_BUCKET: {
            'Fn::Join': ['-', ['aiaas-registry', { Ref: 'AWS::AccountId' }, { Ref: 'AWS::Region' }]],
          },
          AIAAS_MODEL: 'diabetes',
          AIAAS_ALIAS: 'live',
          AIAAS_ALIAS_CHECK_SECONDS: '60',
          AIAAS_RUNTIME: 'wasm',
          AIAAS_FAST_PATH: 'auto',
          AIAAS_RUNTIME_MODULE: '/opt/aiaas-runtime/runtime.mjs',
          POWERTOOLS_SERVICE_NAME: 'aiaas-diabetes',
          POWERTOOLS_METRICS_NAMESPACE: 'aiaas',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          NODE_OPTIONS: Match.absent(),
        },
      },
    });
    iris.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ AIAAS_MODEL: 'iris', AIAAS_ALIAS_CHECK_SECONDS: '30' }) },
    });
    native.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ AIAAS_MODEL: 'big', AIAAS_RUNTIME: 'native' }) },
    });
  });

  it('attach the tfjs runtime layer built in the same stack', () => {
    diabetes.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    const layer = new Capture();
    diabetes.hasResource('AWS::Lambda::Function', {
      Properties: {
        Layers: [{ Ref: layer }],
        Environment: { Variables: Match.objectLike({ AIAAS_MODEL: 'diabetes' }) },
      },
    });
    diabetes.hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleArchitectures: Match.arrayWith(['arm64']),
      CompatibleRuntimes: ['nodejs24.x'],
    });
    expect(diabetes.toJSON().Resources[layer.asString()].Type).toBe('AWS::Lambda::LayerVersion');
    // A native model without retraining needs no layer.
    native.resourceCountIs('AWS::Lambda::LayerVersion', 0);
  });

  it('share one small code asset and one layer asset across models (bundled once)', () => {
    const key = (template: Template, type: string, property: string) => {
      const found = Object.values(template.findResources(type)).map(
        (resource) => resource.Properties[property].S3Key as string,
      );
      return found;
    };
    const inference = (template: Template) =>
      text(
        Object.values(template.findResources('AWS::Lambda::Function')).find(
          (fn) => fn.Properties.Environment.Variables.AIAAS_ALIAS_CHECK_SECONDS,
        )?.Properties.Code.S3Key,
      );
    expect(inference(diabetes)).toBe(inference(iris));
    expect(inference(diabetes)).toBe(inference(publicModel));
    expect(key(diabetes, 'AWS::Lambda::LayerVersion', 'Content')).toEqual(
      key(iris, 'AWS::Lambda::LayerVersion', 'Content'),
    );
  });

  it('carry the asset metadata SAM CLI needs, under fixed logical ids', () => {
    const metadata = {
      'aws:asset:path': Match.stringLikeRegexp('^asset\\.'),
      'aws:asset:property': 'Code',
      'aws:asset:is-bundled': true,
    };
    expect(Object.keys(diabetes.findResources('AWS::Lambda::Function', { Metadata: metadata }))).toEqual([
      'InferenceFunction',
      'RetrainingFunction',
    ]);
    diabetes.hasResource('AWS::Lambda::LayerVersion', {
      Metadata: Match.objectLike({ 'aws:asset:property': 'Content', 'aws:asset:path': Match.anyValue() }),
    });
    native.hasResource('AWS::Lambda::Function', {
      Metadata: Match.objectLike({
        'aws:asset:property': 'Code.ImageUri',
        'aws:asset:dockerfile-path': Match.anyValue(),
      }),
    });
  });

  it('publish a version and point the manifest alias at it', () => {
    const version = new Capture();
    diabetes.hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      FunctionName: { Ref: 'InferenceFunction' },
      FunctionVersion: { 'Fn::GetAtt': [version, 'Version'] },
    });
    expect(diabetes.toJSON().Resources[version.asString()].Type).toBe('AWS::Lambda::Version');
    // Provisioned concurrency only where the manifest asks for it, on the alias.
    iris.hasResourceProperties('AWS::Lambda::Alias', {
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
    });
    diabetes.hasResourceProperties('AWS::Lambda::Alias', { ProvisionedConcurrencyConfig: Match.absent() });
  });

  it('expose exactly one function URL per model, on the alias, IAM-authenticated by default', () => {
    for (const template of [diabetes, iris, native]) {
      template.resourceCountIs('AWS::Lambda::Url', 1);
      template.hasResourceProperties('AWS::Lambda::Url', {
        AuthType: 'AWS_IAM',
        Qualifier: 'live',
        TargetFunctionArn: { 'Fn::GetAtt': ['InferenceFunction', 'Arn'] },
        Cors: Match.absent(),
      });
      // No resource policy opens an IAM-auth URL to anyone.
      template.resourceCountIs('AWS::Lambda::Permission', 0);
    }
    diabetes.hasOutput('FunctionUrl', {
      Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('FunctionUrl'), 'FunctionUrl'] },
    });
  });

  it('reserve concurrency only where the manifest asks for it', () => {
    // Unset by default: nothing is taken from the account's concurrency pool.
    for (const template of [diabetes, native]) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: { Variables: Match.objectLike({ AIAAS_ALIAS: 'live' }) },
        ReservedConcurrentExecutions: Match.absent(),
      });
    }
    iris.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 10 });
    publicModel.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 5 });
  });

  it('open a URL to the public only by explicit opt-in, with its CORS settings', () => {
    publicModel.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'NONE',
      Qualifier: 'live',
      Cors: { AllowOrigins: ['https://demo.example.com'], AllowMethods: ['GET', 'POST'], MaxAge: 300 },
    });
    publicModel.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunctionUrl',
      FunctionUrlAuthType: 'NONE',
      Principal: '*',
    });
  });

  it("let the inference role read only its own model's keys", () => {
    for (const [name, template] of [
      ['diabetes', diabetes],
      ['iris', iris],
      ['big', native],
    ] as const) {
      const statements = statementsOf(template, 'InferenceRole');
      const s3 = statements.filter((statement) =>
        actions(statement).some((action) => action.startsWith('s3:')),
      );
      expect(s3.flatMap(actions).sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
      // Serving needs the alias pointer and the version files: not other aliases, history or claims.
      const get = s3.find((statement) => actions(statement).includes('s3:GetObject'))!;
      expect(resources(get).sort()).toEqual([
        `${BUCKET}/models/${name}/aliases/live.json`,
        `${BUCKET}/models/${name}/versions/*`,
      ]);
      const list = s3.find((statement) => actions(statement).includes('s3:ListBucket'))!;
      expect(resources(list)).toEqual([BUCKET]);
      expect(list.Condition?.StringLike).toEqual({
        's3:prefix': [`models/${name}/versions/*`, `models/${name}/aliases/live.json`],
      });
      for (const statement of s3) {
        expect(statement.Condition?.StringEquals).toEqual({
          's3:ResourceAccount': { Ref: 'AWS::AccountId' },
        });
      }
      // Nothing else: its own log group, no wildcard actions, no other model's prefix.
      for (const statement of statements) {
        expect(actions(statement).every((action) => !action.includes('*'))).toBe(true);
        expect(resources(statement).join(' ')).not.toMatch(
          /models\/(?!\w+\/(versions\/\*|aliases\/live\.json))|datasets\//,
        );
      }
      const others = ['diabetes', 'iris', 'big', 'demo_public'].filter((other) => other !== name);
      for (const other of others) {
        expect(JSON.stringify(statements)).not.toContain(`models/${other}/`);
      }
    }
  });

  it('give each function a log group with retention, kept on stack deletion', () => {
    diabetes.resourceCountIs('AWS::Logs::LogGroup', 2);
    diabetes.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 30 },
      DeletionPolicy: 'Retain',
    });
    const logGroup = new Capture();
    diabetes.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ AIAAS_ALIAS: 'live' }) },
      LoggingConfig: { LogGroup: { Ref: logGroup }, LogFormat: 'JSON', ApplicationLogLevel: 'INFO' },
    });
    // The role writes to that log group only (no AWSLambdaBasicExecutionRole with logs on *).
    const logs = statementsOf(diabetes, 'InferenceRole').find((statement) =>
      actions(statement).includes('logs:PutLogEvents'),
    )!;
    expect(logs.Resource).toEqual({ 'Fn::GetAtt': [logGroup.asString(), 'Arn'] });
    diabetes.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })],
      }),
      ManagedPolicyArns: Match.absent(),
    });
  });

  it('keep only the log groups when the stack is deleted: function versions go with their function', () => {
    for (const template of [diabetes, native]) {
      const resources = Object.values(template.toJSON().Resources) as Record<string, unknown>[];
      const retained = resources.filter(
        (r) => r.DeletionPolicy === 'Retain' || r.UpdateReplacePolicy === 'Retain',
      );
      expect(new Set(retained.map((r) => r.Type))).toEqual(new Set(['AWS::Logs::LogGroup']));
    }
    // A deploy's new version replaces the last one, which CloudFormation then deletes.
    diabetes.hasResource('AWS::Lambda::Version', {
      DeletionPolicy: Match.absent(),
      UpdateReplacePolicy: Match.absent(),
    });
  });

  it('alarm on errors, throttles and p99 duration of the inference function', () => {
    const alarm = (metric: string, extra: Record<string, unknown>) =>
      diabetes.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'InferenceFunction' } }],
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        Period: 300,
        ...extra,
      });
    alarm('Errors', { Statistic: 'Sum', Threshold: 1 });
    alarm('Throttles', { Statistic: 'Sum', Threshold: 1 });
    alarm('Duration', { ExtendedStatistic: 'p99', Threshold: 24_000, EvaluationPeriods: 3 });
    native.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Duration', Threshold: 48_000 });
  });

  it('send alarms to an SNS topic when one is configured', () => {
    const withTopic = buildApp(
      { app: 'aiaas', models: [{ name: 'solo', runtime: 'native' }] },
      { alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:aiaas-alarms' },
    );
    const template = Template.fromStack(withTopic.models.get('solo')!);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 3);
    template.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: ['arn:aws:sns:eu-west-1:123456789012:aiaas-alarms'],
      OKActions: ['arn:aws:sns:eu-west-1:123456789012:aiaas-alarms'],
    });
  });
});

describe('retraining', () => {
  it('exists only for models with a retrain schedule', () => {
    diabetes.resourceCountIs('AWS::Scheduler::Schedule', 1);
    iris.resourceCountIs('AWS::Scheduler::Schedule', 0);
    iris.resourceCountIs('AWS::Lambda::Function', 1);
  });

  it('reserves concurrency for retraining only where the manifest asks for it', () => {
    // Unset by default, so an account that can reserve nothing (a new one, quota 10) deploys.
    diabetes.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'aiaas-retrain-diabetes' }) },
      ReservedConcurrentExecutions: Match.absent(),
    });
    Template.fromStack(result.models.get('serial')!).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'aiaas-retrain-serial' }) },
      ReservedConcurrentExecutions: 1,
    });
  });

  it('runs the retraining function with the manifest sizing, without Lambda retries', () => {
    diabetes.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 2048,
      Timeout: 900,
      Layers: [{ Ref: Match.stringLikeRegexp('^TfjsRuntime') }],
      Environment: {
        Variables: Match.objectLike({
          AIAAS_MODEL: 'diabetes',
          AIAAS_RUNTIME_MODULE: '/opt/aiaas-runtime/runtime.mjs',
          AIAAS_MODEL_SPEC: Match.serializedJson(
            Match.objectLike({ name: 'diabetes', retrain: Match.objectLike({ schedule: 'rate(1 day)' }) }),
          ),
          POWERTOOLS_SERVICE_NAME: 'aiaas-retrain-diabetes',
        }),
      },
    });
    diabetes.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: 'RetrainingFunction' },
      MaximumRetryAttempts: 0,
    });
    diabetes.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'RetrainingFunction' } }],
    });
  });

  it('may write only models/<name>/ and read only its dataset prefix', () => {
    const s3 = statementsOf(diabetes, 'RetrainingRole').filter((statement) =>
      actions(statement).some((action) => action.startsWith('s3:')),
    );
    const byAction = (action: string) => s3.filter((statement) => actions(statement).includes(action));
    // Create-only writes and alias swaps (test/infra/registry-access.test.ts), and no deletes.
    expect(byAction('s3:PutObject').flatMap(resources)).toEqual([
      `${BUCKET}/models/diabetes/*`,
      `${BUCKET}/models/diabetes/aliases/*`,
      `${BUCKET}/models/diabetes/aliases/*/history/*`,
    ]);
    expect(byAction('s3:DeleteObject')).toEqual([]);
    expect(byAction('s3:GetObject').flatMap(resources).sort()).toEqual([
      `${BUCKET}/datasets/diabetes/*`,
      `${BUCKET}/models/diabetes/*`,
    ]);
    expect(byAction('s3:ListBucket')[0]?.Condition?.StringLike).toEqual({
      's3:prefix': ['datasets/diabetes/*', 'models/diabetes/*'],
    });
    expect(s3.flatMap(actions).sort()).toEqual([
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      's3:PutObject',
      's3:PutObject',
    ]);
  });

  it('is scheduled by EventBridge Scheduler with a role that can invoke only that function', () => {
    diabetes.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 day)',
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': ['RetrainingFunction', 'Arn'] },
        RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RetrainingSchedulerRole'), 'Arn'] },
        Input: Match.serializedJson({ source: 'aiaas.schedule', model: 'diabetes' }),
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: {
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RetrainingUndeliveredRuns'), 'Arn'] },
        },
      },
    });
    diabetes.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: {
              StringEquals: {
                'aws:SourceAccount': { Ref: 'AWS::AccountId' },
                'aws:SourceArn': Match.anyValue(),
              },
            },
          }),
        ],
      },
    });
    expect(statementsOf(diabetes, 'RetrainingSchedulerRole')).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: { 'Fn::GetAtt': ['RetrainingFunction', 'Arn'] },
      }),
      // And send to its dead-letter queue (test/infra/retraining-function.test.ts).
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^RetrainingUndeliveredRuns/), 'Arn'] },
      }),
    ]);
  });
});

/** One model's stack built directly, pinned to `region` (the app itself is environment-agnostic). */
function modelStackIn(region: string | undefined, model: Record<string, unknown>) {
  const app = new App({ context: cdkContext(), outdir: tempDir('aiaas-region-') });
  const spec = parseManifest({ models: [model] }, 'test manifest').models[0]!;
  return new ModelStack(app, 'aiaas-Model-edge', {
    model: spec,
    bucketName: 'aiaas-registry-test',
    ...(region ? { env: { account: '123456789012', region } } : {}),
  });
}

describe('function URL regions', () => {
  // A native model without retraining: no layer to bundle, so each stack builds in moments.
  const edge = { name: 'edge', runtime: 'native' };

  it.each(['ca-west-1', 'il-central-1', 'us-gov-west-1'])(
    'fail synthesis for a stack pinned to %s, which has no function URLs, naming the region',
    (region) => {
      expect(() => modelStackIn(region, edge)).toThrow(
        new RegExp(`Model "edge" \\(stack aiaas-Model-edge\\): region ${region} has no Lambda function URLs`),
      );
    },
  );

  it('synthesize a stack pinned to a region with function URLs, and an environment-agnostic one', () => {
    for (const region of ['eu-west-1', undefined]) {
      const template = Template.fromStack(modelStackIn(region, edge));
      template.resourceCountIs('AWS::Lambda::Url', 1);
    }
  });

  it('refuse the construct itself in such a region (used outside the manifest)', () => {
    const stack = new Stack(new App(), 'Direct', { env: { region: 'eu-central-2' } });
    expect(
      () =>
        new ModelFunction(stack, 'Inference', {
          modelName: 'edge',
          registryBucket: Bucket.fromBucketName(stack, 'Registry', 'aiaas-registry-test'),
          runtime: { kind: 'native' },
        }),
    ).toThrow(/Model "edge": region eu-central-2 has no Lambda function URLs/);
  });

  it("list the 15 regions of cfn-lint's data, GovCloud and China included", () => {
    expect(REGIONS_WITHOUT_FUNCTION_URLS).toHaveLength(15);
    expect(REGIONS_WITHOUT_FUNCTION_URLS).toEqual(
      expect.arrayContaining([
        'ca-west-1',
        'il-central-1',
        'eu-central-2',
        'us-gov-east-1',
        'cn-northwest-1',
      ]),
    );
  });
});

/** A ModelFunction in a stack of its own, with the registry bucket imported by name. */
function directFunction(access: unknown) {
  const stack = new Stack(new App(), 'Direct');
  return () =>
    new ModelFunction(stack, 'Inference', {
      modelName: 'open',
      registryBucket: Bucket.fromBucketName(stack, 'Registry', 'aiaas-registry-test'),
      runtime: { kind: 'native' },
      // The types rule these out; the construct still refuses them from JavaScript or a cast.
      access: access as ModelAccess,
    });
}

describe('a public (auth NONE) model function', () => {
  const NONE = FunctionUrlAuthType.NONE;
  const cors = { allowedOrigins: ['https://demo.example.com'] };

  it('needs explicit CORS origins, never "*"', () => {
    expect(directFunction({ authType: NONE, reservedConcurrency: 5 })).toThrow(
      /Model "open": authType NONE needs cors/,
    );
    expect(
      directFunction({ authType: NONE, reservedConcurrency: 5, cors: { allowedOrigins: ['*'] } }),
    ).toThrow(/no "\*"/);
  });

  it('needs a reserved concurrency cap', () => {
    expect(directFunction({ authType: NONE, cors })).toThrow(
      /Model "open": authType NONE needs reservedConcurrency/,
    );
    expect(directFunction({ authType: NONE, cors, reservedConcurrency: 5 })).not.toThrow();
  });

  it('is the only kind with CORS', () => {
    expect(directFunction({ authType: FunctionUrlAuthType.AWS_IAM, cors })).toThrow(
      /Model "open": CORS is only for authType NONE/,
    );
    expect(directFunction({ authType: FunctionUrlAuthType.AWS_IAM, reservedConcurrency: 3 })).not.toThrow();
  });
});

describe('the constructs with a registry bucket of the same stack', () => {
  // Resources are passed as objects: a bucket created beside the functions is referenced, not named.
  const stack = new Stack(new App({ context: cdkContext(), outdir: tempDir('aiaas-same-') }), 'Same');
  const bucket = new Bucket(stack, 'Registry');
  const inference = new ModelFunction(stack, 'Inference', {
    modelName: 'solo',
    registryBucket: bucket,
    runtime: { kind: 'native' },
  });
  const template = Template.fromStack(stack);
  const bucketId = stack.getLogicalId(bucket.node.defaultChild as CfnBucket);

  it('name the bucket by reference in the environment and the policy', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ AIAAS_BUCKET: { Ref: bucketId } }) },
    });
    const statements = statementsOf(template, 'InferenceRole');
    const list = statements.find((statement) => actions(statement).includes('s3:ListBucket'))!;
    expect(list.Resource).toEqual({ 'Fn::GetAtt': [bucketId, 'Arn'] });
    const get = statements.find((statement) => actions(statement).includes('s3:GetObject'))!;
    expect(resources(get).sort()).toEqual([
      `<${bucketId}.Arn>/models/solo/aliases/live.json`,
      `<${bucketId}.Arn>/models/solo/versions/*`,
    ]);
  });

  it('return the registry grant as an iam.Grant with its statements', () => {
    expect(inference.registryGrant.success).toBe(true);
    expect(inference.registryGrant.principalStatements.map((statement) => statement.sid)).toEqual([
      'ReadOwnPrefixes',
      'ListOwnPrefixes',
    ]);
    // A Grant is dependable: what needs the access can wait for the policy.
    const waiter = new Construct(stack, 'Waiter');
    inference.registryGrant.applyBefore(waiter);
    expect(waiter.node.dependencies.length).toBeGreaterThan(0);
  });

  it('grant retraining create-only writes, alias swaps and the history guard, as one Grant', () => {
    const role = new Role(stack, 'Trainer', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const grant = RegistryGrants.fromBucket(bucket).retrain(role, 'solo', 'datasets/solo/');
    expect(grant.principalStatements.map((statement) => [statement.sid, statement.effect])).toEqual([
      ['ReadOwnPrefixes', 'Allow'],
      ['CreateOnlyUnderOwnModel', 'Allow'],
      ['SwapOwnAliasPointers', 'Allow'],
      ['HistoryIsAppendOnly', 'Deny'],
      ['ListOwnPrefixes', 'Allow'],
    ]);
    expect(() => RegistryGrants.fromBucket(bucket).keys(role, { write: ['datasets/solo/'] })).toThrow(
      /must be a model root/,
    );
    // Retraining reads its own model's data only: not every model's, not another model's keys.
    for (const other of [
      'datasets/',
      'datasets/other/',
      'models/other/',
      'datasets/solo/../x/',
      'datasets/solo/*/',
    ]) {
      expect(() => RegistryGrants.fromBucket(bucket).retrain(role, 'solo', other)).toThrow(
        /may read only datasets\/solo\/ or a folder below it/,
      );
    }
    expect(() =>
      RegistryGrants.fromBucket(bucket).retrain(role, 'solo', 'datasets/solo/2024/'),
    ).not.toThrow();
  });
});
