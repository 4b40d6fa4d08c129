/**
 * The retraining function's schedule in a synthesized model stack, with an alarm topic: the runs
 * EventBridge Scheduler could not start land in an encrypted, TLS-only dead-letter queue that only
 * the scheduler role may send to, an alarm on that queue goes to the topic, and only schedules of
 * this account's default schedule group may assume the scheduler role. cdk-nag and cfn-lint clean.
 * The function itself, its sizing and registry access: model.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp, exampleManifest, type SynthResult } from './helpers.js';

type Resource = { Type: string; Properties: Record<string, unknown> };
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Principal?: unknown;
  Condition?: unknown;
}

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:aiaas-alarms';

let result: SynthResult;
let resources: Record<string, Resource>;

beforeAll(() => {
  // The example model (with `retrain`), as `cdk synth -c alarmTopicArn=...` builds it.
  result = buildApp(exampleManifest(), { alarmTopicArn: TOPIC });
  resources = Template.fromStack(result.models.get('diabetes')!).toJSON().Resources;
}, 180_000);

/** Logical ids of the resources of `type`. */
const idsOf = (type: string) => Object.keys(resources).filter((id) => resources[id]!.Type === type);
const actions = (statement: Statement) => [statement.Action].flat();

/** The queue the retraining schedule's DeadLetterConfig names (its logical id). */
function deadLetterQueueId(): string {
  const [scheduleId] = idsOf('AWS::Scheduler::Schedule');
  const target = resources[scheduleId!]!.Properties.Target as { DeadLetterConfig?: { Arn: unknown } };
  expect(target.DeadLetterConfig, 'the retraining schedule has a DeadLetterConfig').toBeDefined();
  const arn = target.DeadLetterConfig!.Arn as { 'Fn::GetAtt': [string, string] };
  expect(arn['Fn::GetAtt']?.[1]).toBe('Arn');
  const queueId = arn['Fn::GetAtt'][0];
  expect(resources[queueId]?.Type).toBe('AWS::SQS::Queue');
  return queueId;
}

const schedulerRoleId = () => {
  const ids = idsOf('AWS::IAM::Role').filter((id) => id.startsWith('RetrainingSchedulerRole'));
  expect(ids).toHaveLength(1);
  return ids[0]!;
};

describe('the retraining schedule', () => {
  it('is the one schedule of the stack, under its logical id, and targets the retraining function', () => {
    expect(idsOf('AWS::Scheduler::Schedule')).toEqual([
      expect.stringMatching(/^RetrainingSchedule[0-9A-F]{8}$/),
    ]);
    const target = resources[idsOf('AWS::Scheduler::Schedule')[0]!]!.Properties.Target as Record<
      string,
      unknown
    >;
    expect(target.Arn).toEqual({ 'Fn::GetAtt': ['RetrainingFunction', 'Arn'] });
    expect(target.RoleArn).toEqual({ 'Fn::GetAtt': [schedulerRoleId(), 'Arn'] });
  });

  it('puts the runs it could not start in an encrypted, TLS-only queue kept 14 days', () => {
    const queue = resources[deadLetterQueueId()]!;
    expect(queue.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    const policies = Object.values(resources).filter(
      (r) =>
        r.Type === 'AWS::SQS::QueuePolicy' &&
        JSON.stringify(r.Properties.Queues) === JSON.stringify([{ Ref: deadLetterQueueId() }]),
    );
    expect(policies).toHaveLength(1);
    // The queue's own policy only refuses plain HTTP: it allows no one anything.
    const statements = (policies[0]!.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
    expect(statements).toEqual([
      expect.objectContaining({
        Effect: 'Deny',
        Action: 'sqs:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    ]);
  });

  it('has a role that may invoke the function and send to that queue, and nothing else may send to it', () => {
    const queueArn = { 'Fn::GetAtt': [deadLetterQueueId(), 'Arn'] };
    const role = schedulerRoleId();
    const policies = Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Policy');
    const of = (roleId: string) =>
      policies
        .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
        .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    expect(of(role)).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: { 'Fn::GetAtt': ['RetrainingFunction', 'Arn'] },
      }),
      { Sid: 'SendUndeliveredRuns', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn },
    ]);
    // No other policy of the stack grants any SQS action (the functions' roles included).
    const sqsStatements = policies
      .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
      .filter((s) => actions(s).some((a) => a.startsWith('sqs:')));
    expect(sqsStatements).toEqual([
      expect.objectContaining({ Action: 'sqs:SendMessage', Resource: queueArn }),
    ]);
  });

  it("may be assumed by EventBridge Scheduler only for schedules of this account's default group", () => {
    const trust = resources[schedulerRoleId()]!.Properties.AssumeRolePolicyDocument as {
      Statement: Statement[];
    };
    expect(trust.Statement).toEqual([
      {
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: {
          StringEquals: {
            'aws:SourceAccount': { Ref: 'AWS::AccountId' },
            'aws:SourceArn': {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':scheduler:',
                  { Ref: 'AWS::Region' },
                  ':',
                  { Ref: 'AWS::AccountId' },
                  ':schedule-group/default',
                ],
              ],
            },
          },
        },
      },
    ]);
    // The schedule names no group, so it is in the default group the condition names.
    const schedule = resources[idsOf('AWS::Scheduler::Schedule')[0]!]!;
    expect(schedule.Properties.GroupName).toBeUndefined();
  });
});

describe('the retraining alarms', () => {
  it('include undelivered runs (a message in the dead-letter queue), sent to the alarm topic', () => {
    const undelivered = Object.values(resources).filter(
      (r) =>
        r.Type === 'AWS::CloudWatch::Alarm' &&
        r.Properties.Namespace === 'AWS/SQS' &&
        JSON.stringify(r.Properties.Dimensions) ===
          JSON.stringify([
            { Name: 'QueueName', Value: { 'Fn::GetAtt': [deadLetterQueueId(), 'QueueName'] } },
          ]),
    );
    expect(undelivered).toHaveLength(1);
    expect(undelivered[0]!.Properties).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [TOPIC],
      OKActions: [TOPIC],
    });
  });

  it('go, with every other alarm of the stack, to the topic exactly once', () => {
    const alarms = idsOf('AWS::CloudWatch::Alarm');
    // Inference errors, throttles, p99 duration; retraining errors and undelivered runs.
    expect(alarms).toHaveLength(5);
    for (const id of alarms) {
      expect(resources[id]!.Properties, id).toMatchObject({ AlarmActions: [TOPIC], OKActions: [TOPIC] });
    }
  });
});

describe('a model stack with retraining', () => {
  it('passes cdk-nag, acknowledging the dead-letter queue finding with a reason', () => {
    expect(() => result.app.synth()).not.toThrow();
    const report = new AwsSolutionsChecks().validateScope(result.app);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
    const queue = result.models.get('diabetes')!.retraining!.deadLetterQueue;
    const acknowledged = queue.node
      .findAll()
      .flatMap((construct) => construct.node.metadata)
      .filter((entry) => entry.type === 'aws:cdk:acknowledged-rules')
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>));
    expect(acknowledged.map(([id]) => id.replace(/^Annotation::/, ''))).toEqual(['AwsSolutions-SQS3']);
  });

  const cfnLint = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
  const hasCfnLint = cfnLint.status === 0;
  if (!hasCfnLint) console.warn('retraining-function: cfn-lint check skipped, cfn-lint is not installed');

  it.runIf(hasCfnLint)(
    'passes cfn-lint with no errors',
    () => {
      const assembly = result.app.synth();
      const template = join(assembly.directory, 'aiaas-Model-diabetes.template.json');
      const run = spawnSync('cfn-lint', ['--format', 'parseable', '--', template], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      // cfn-lint's exit status is a bit mask: 2 errors, 4 warnings, 8 informational.
      const errors = run.stdout.split('\n').filter((line) => /:E\d{4}:/.test(line));
      expect(errors).toEqual([]);
      expect(run.status! & 2, run.stdout + run.stderr).toBe(0);
    },
    150_000,
  );
});
