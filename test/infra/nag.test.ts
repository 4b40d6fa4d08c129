import { App, Stack } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { enableNag } from '../../infra/nag.js';
import { buildApp, exampleManifest, tempDir } from './helpers.js';

describe('cdk-nag AwsSolutions', () => {
  const { app } = buildApp(exampleManifest());

  it('finds nothing unacknowledged in the example app, and synth succeeds with the checks on', () => {
    expect(() => app.synth()).not.toThrow();
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('acknowledges only the per-model object wildcards and the schedule dead-letter queue, each with a reason', () => {
    const acknowledged = app.node
      .findAll()
      .flatMap((construct) =>
        construct.node.metadata.filter((entry) => entry.type === 'aws:cdk:acknowledged-rules'),
      )
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>));
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const [id, reason] of acknowledged) {
      expect(id).toMatch(
        /AwsSolutions-SQS3$|AwsSolutions-IAM5\[Resource::arn:.*\/(models|datasets)\/diabetes\/((versions|aliases)\/(\*\/history\/)?)?\*\]$/,
      );
      expect(String(reason).length).toBeGreaterThan(40);
    }
  });

  it('would fail synth on an unacknowledged finding (the checks are really on)', () => {
    const insecure = new App({ outdir: tempDir('aiaas-nag-') });
    enableNag(insecure);
    new Bucket(new Stack(insecure, 'Insecure'), 'Bucket');
    expect(() => insecure.synth()).toThrow(/AwsSolutions-S1/);
  });
});
