/**
 * The rollout function in the synthesized model stacks: present only where the manifest has a
 * rollout plan, on its schedule with a dead-letter queue, alarmed (its own errors, undelivered runs,
 * server errors per version), cdk-nag clean and cfn-lint clean. Its registry access is evaluated
 * request by request in registry-access.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTelemetry } from '../../functions/inference/telemetry.js';
import { configFromEnv as rolloutConfig } from '../../functions/rollout/handler.js';
import { AIAAS_BUCKET, AIAAS_MODEL_SPEC } from '../../functions/shared/env.js';
import { METRIC_DIMENSIONS, METRICS } from '../../functions/shared/rollout/metric-names.js';
import { versionQuery } from '../../infra/constructs/function-alarms.js';
import { assertEnvironmentFits, ENVIRONMENT_LIMIT_BYTES } from '../../infra/constructs/function-defaults.js';
import { RegistryGrants } from '../../infra/constructs/registry-grants.js';
import { buildApp, type SynthResult } from './helpers.js';
import { ROLLOUT_ALIAS, ROLLOUT_MODEL, rolloutManifest } from './rollout-manifest.js';

let result: SynthResult;
let ranked: Template;
let defaults: Template;
let plain: Template;

beforeAll(() => {
  result = buildApp(rolloutManifest());
  ranked = Template.fromStack(result.models.get(ROLLOUT_MODEL)!);
  defaults = Template.fromStack(result.models.get('defaults')!);
  plain = Template.fromStack(result.models.get('plain')!);
}, 180_000);

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

function statementsOf(template: Template, rolePrefix: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) =>
      (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref.startsWith(rolePrefix)),
    )
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

const fnArn = { 'Fn::GetAtt': ['RolloutFunction', 'Arn'] };

describe('the rollout function', () => {
  it('is synthesized only for models with a rollout plan, under the fixed logical id RolloutFunction', () => {
    for (const template of [ranked, defaults]) {
      expect(Object.keys(template.findResources('AWS::Lambda::Function'))).toContain('RolloutFunction');
      template.resourceCountIs('AWS::Scheduler::Schedule', 1);
      template.resourceCountIs('AWS::SQS::Queue', 1);
    }
    expect(Object.keys(plain.findResources('AWS::Lambda::Function'))).toEqual(['InferenceFunction']);
    plain.resourceCountIs('AWS::Scheduler::Schedule', 0);
    plain.resourceCountIs('AWS::SQS::Queue', 0);
    // Only the inference function's errors, throttles and p99 duration.
    plain.resourceCountIs('AWS::CloudWatch::Alarm', 3);
  });

  it('runs on Node.js 24, arm64, with its model, alias and plan, and is not retried by Lambda', () => {
    ranked.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 30,
      Layers: Match.absent(),
      LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: Match.stringLikeRegexp('^RolloutLogs') } },
      Environment: {
        Variables: Match.objectLike({
          AIAAS_MODEL: ROLLOUT_MODEL,
          AIAAS_ALIAS: ROLLOUT_ALIAS,
          AIAAS_MODEL_SPEC: Match.serializedJson(
            Match.objectLike({
              name: ROLLOUT_MODEL,
              rollout: Match.objectLike({ steps: [5, 25, 100], stepMinutes: 15, minRequests: 200 }),
            }),
          ),
          POWERTOOLS_SERVICE_NAME: `aiaas-rollout-${ROLLOUT_MODEL}`,
          POWERTOOLS_METRICS_NAMESPACE: 'aiaas',
        }),
      },
    });
    ranked.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: 'RolloutFunction' },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
    ranked.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it("writes the environment the rollout function's own reader accepts, with the manifest's alias and plan", () => {
    const variables = ranked.findResources('AWS::Lambda::Function').RolloutFunction!.Properties.Environment
      .Variables as Record<string, string>;
    const config = rolloutConfig({ ...variables, [AIAAS_BUCKET]: 'aiaas-registry-test' });
    expect(config).toMatchObject({
      bucket: 'aiaas-registry-test',
      model: ROLLOUT_MODEL,
      alias: ROLLOUT_ALIAS,
    });
    expect(config.spec.rollout).toEqual(rolloutManifest().models[0]!.rollout);
  });

  it('is the only thing its schedule may invoke, at the rate of the plan', () => {
    ranked.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(2 minutes)',
      ScheduleExpressionTimezone: 'UTC',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: fnArn,
        RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RolloutSchedulerRole'), 'Arn'] },
        Input: Match.serializedJson({ source: 'aiaas.schedule', model: ROLLOUT_MODEL, alias: ROLLOUT_ALIAS }),
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 60 },
        DeadLetterConfig: {
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RolloutUndeliveredRuns'), 'Arn'] },
        },
      },
    });
    // The plan's default: every minute.
    defaults.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(1 minute)' });

    const scheduler = statementsOf(ranked, 'RolloutSchedulerRole');
    expect(scheduler).toEqual([
      expect.objectContaining({ Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: fnArn }),
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^RolloutUndeliveredRuns/), 'Arn'] },
      }),
    ]);
    ranked.hasResourceProperties('AWS::IAM::Role', {
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
  });

  it('keeps undelivered runs in an encrypted, TLS-only queue for 14 days', () => {
    ranked.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    ranked.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('may read metrics with GetMetricData, the one action IAM cannot scope, and nothing else of CloudWatch', () => {
    const statements = statementsOf(ranked, 'RolloutRole');
    const nonS3 = statements.filter((s) => ![s.Action].flat().every((a) => a.startsWith('s3:')));
    expect(nonS3.map((s) => [s.Action, s.Resource])).toEqual([
      [
        ['logs:CreateLogStream', 'logs:PutLogEvents'],
        { 'Fn::GetAtt': [expect.stringMatching(/^RolloutLogs/), 'Arn'] },
      ],
      ['cloudwatch:GetMetricData', '*'],
    ]);
  });
});

describe('RegistryGrants alias moves', () => {
  it('refuse anything but single alias pointers, and alias names the registry would refuse', () => {
    const stack = new Stack(new App(), 'Grants');
    const grants = RegistryGrants.fromBucket(Bucket.fromBucketName(stack, 'Registry', 'registry'));
    const role = new Role(stack, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    for (const pointer of [
      'models/m/aliases/*.json',
      'models/m/aliases/live',
      'models/m/aliases/',
      'models/m/',
      'models/../aliases/live.json',
      'models/m/aliases/live/history/1.json',
    ]) {
      expect(() => grants.keys(role, { moveAliases: [pointer] }), pointer).toThrow(
        /must be an alias pointer/,
      );
    }
    expect(() => grants.rollout(role, 'm', 'Live!')).toThrow(/Invalid alias/);
    expect(() => grants.rollout(role, 'm', 'live')).not.toThrow();
  });
});

describe('the rollout alarms', () => {
  const alarms = () => Object.values(ranked.findResources('AWS::CloudWatch::Alarm'));

  it("watch the rollout function's own errors and the runs its schedule could not start", () => {
    ranked.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'RolloutFunction' } }],
      Threshold: 1,
    });
    ranked.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RolloutUndeliveredRuns'), 'QueueName'] },
        },
      ],
      Threshold: 1,
    });
  });

  it('include server errors per version: one Metrics Insights query grouped by version and role', () => {
    const perVersion = alarms().filter((alarm) => alarm.Properties.Metrics);
    expect(perVersion).toHaveLength(1);
    const { Metrics, Threshold, ComparisonOperator, TreatMissingData } = perVersion[0]!.Properties;
    expect({ Threshold, ComparisonOperator, TreatMissingData }).toEqual({
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(Metrics).toEqual([
      expect.objectContaining({ Id: expect.any(String), Period: 300, ReturnData: true }),
    ]);
    const query = Metrics[0].Expression as string;
    expect(query).toBe(versionQuery(METRICS.faults, ROLLOUT_MODEL, 'aiaas'));
    // The inference function's fault count, exactly the per-version series of this model (SCHEMA
    // lists every dimension it publishes them with), one contributor per version and role, so a
    // canary's faults alarm on their own even while the live version is healthy.
    const { model, version, role, service } = METRIC_DIMENSIONS;
    expect(query).toMatch(/^SELECT SUM\("Faults"\) FROM SCHEMA\("aiaas", /);
    const schema = /SCHEMA\(([^)]*)\)/
      .exec(query)![1]!
      .split(', ')
      .slice(1)
      .map((d) => JSON.parse(d));
    expect(schema.sort()).toEqual([model, version, role, service].sort());
    expect(query).toContain(`WHERE "${model}" = '${ROLLOUT_MODEL}'`);
    expect(query).toContain(`GROUP BY "${version}", "${role}"`);
  });

  it("query exactly the dimension set of the inference function's per-version Faults (its real EMF)", () => {
    /** Powertools Metrics that keeps each EMF document it would print. */
    class Captured extends Metrics {
      readonly emitted: ReturnType<Metrics['serializeMetrics']>[] = [];
      override publishStoredMetrics(): this {
        this.emitted.push(this.serializeMetrics());
        this.clearMetrics();
        this.clearDimensions();
        this.clearMetadata();
        return this;
      }
    }
    const metrics = new Captured({ namespace: 'aiaas', serviceName: `aiaas-${ROLLOUT_MODEL}` });
    const silent = { info: () => {}, warn: () => {}, error: () => {} };
    const telemetry = createTelemetry(ROLLOUT_MODEL, { log: silent, metrics });
    telemetry.record!({ version: 7, role: 'canary', failedStatus: 500, coldStart: false, latencyMs: 3 });
    const faults = metrics.emitted.find((doc) =>
      doc._aws.CloudWatchMetrics[0]!.Metrics.some((metric) => metric.Name === METRICS.faults),
    )!;
    const dimensions = faults._aws.CloudWatchMetrics[0]!.Dimensions.flat();
    expect(faults._aws.CloudWatchMetrics[0]!.Namespace).toBe('aiaas');
    expect(faults).toMatchObject({ model: ROLLOUT_MODEL, version: '7', role: 'canary' });
    const query = versionQuery(METRICS.faults, ROLLOUT_MODEL, 'aiaas');
    const schema = /SCHEMA\(([^)]*)\)/
      .exec(query)![1]!
      .split(', ')
      .slice(1)
      .map((d) => JSON.parse(d));
    expect([...dimensions].sort()).toEqual([...schema].sort());
  });

  it('send every alarm, the per-version one included, to the SNS topic when one is configured', () => {
    const topic = 'arn:aws:sns:eu-west-1:123456789012:aiaas-alarms';
    const withTopic = buildApp(
      { app: 'aiaas', models: [{ name: 'solo', runtime: 'native', rollout: {} }] },
      { alarmTopicArn: topic },
    );
    const template = Template.fromStack(withTopic.models.get('solo')!);
    // Inference (3) + rollout errors + undelivered runs + faults per version.
    template.resourceCountIs('AWS::CloudWatch::Alarm', 6);
    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [topic], OKActions: [topic] });
  });
});

describe('a model stack with a rollout plan', () => {
  it('passes cdk-nag, acknowledging only its own wildcards, each with a reason', () => {
    expect(() => result.app.synth()).not.toThrow();
    const report = new AwsSolutionsChecks().validateScope(result.app);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
    const acknowledged = result.models
      .get(ROLLOUT_MODEL)!
      .node.findAll()
      .flatMap((construct) =>
        construct.node.metadata.filter((entry) => entry.type === 'aws:cdk:acknowledged-rules'),
      )
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>));
    const ids = acknowledged.map(([id]) => id.replace(/^Annotation::/, ''));
    expect(ids).toContain('AwsSolutions-IAM5[Resource::*]');
    expect(ids).toContain('AwsSolutions-SQS3');
    for (const [id, reason] of acknowledged) {
      expect(id.replace(/^Annotation::/, '')).toMatch(
        new RegExp(
          `^AwsSolutions-(SQS3|IAM5\\[Resource::\\*\\]|IAM5\\[Resource::arn:.*/models/${ROLLOUT_MODEL}/(versions/|aliases/${ROLLOUT_ALIAS}/history/)\\*\\])$`,
        ),
      );
      expect(String(reason).length).toBeGreaterThan(40);
    }
  });

  const cfnLint = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
  const hasCfnLint = cfnLint.status === 0;
  if (!hasCfnLint) console.warn('rollout-function: cfn-lint check skipped, cfn-lint is not installed');

  it.runIf(hasCfnLint)('passes cfn-lint with no errors', () => {
    const assembly = result.app.synth();
    const templates = [ROLLOUT_MODEL, 'defaults', 'plain'].map((name) =>
      join(assembly.directory, `aiaas-Model-${name}.template.json`),
    );
    const run = spawnSync('cfn-lint', ['--format', 'parseable', '--', ...templates], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    // cfn-lint's exit status is a bit mask: 2 errors, 4 warnings, 8 informational.
    const errors = run.stdout.split('\n').filter((line) => /:E\d{4}:/.test(line));
    expect(errors).toEqual([]);
    expect(run.status! & 2, run.stdout + run.stderr).toBe(0);
  });
});

describe("a function's environment", () => {
  it('is refused at synth when Lambda would refuse it, naming the function, its size and the manifest entry', () => {
    // The bucket name is a token at synth: it counts at its longest (63), whatever its text.
    const base = { [AIAAS_BUCKET]: 'a-token-of-any-length' };
    const room = ENVIRONMENT_LIMIT_BYTES - AIAAS_BUCKET.length - 63 - AIAAS_MODEL_SPEC.length;
    expect(() =>
      assertEnvironmentFits({ ...base, [AIAAS_MODEL_SPEC]: 'x'.repeat(room) }, 'rollout', 'm'),
    ).not.toThrow();
    expect(() =>
      assertEnvironmentFits({ ...base, [AIAAS_MODEL_SPEC]: 'x'.repeat(room + 1) }, 'rollout', 'm'),
    ).toThrow(
      `Model "m": the rollout function's environment would be ${ENVIRONMENT_LIMIT_BYTES + 1} bytes (Lambda allows ${ENVIRONMENT_LIMIT_BYTES}); shorten the manifest entry (${AIAAS_MODEL_SPEC} is ${room + 1} bytes)`,
    );
  });
});
