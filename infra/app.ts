/**
 * CDK entry point (`cdk.json`: `npx tsx infra/app.ts`).
 *
 * Context (`-c key=value`) or environment:
 *   manifest / AIAAS_MANIFEST                    manifest path (default models/manifest.json)
 *   existingBucketName / AIAAS_EXISTING_BUCKET   adopt an existing registry bucket
 *   bucketName / AIAAS_BUCKET_NAME               name of the registry bucket to create
 *   alarmTopicArn / AIAAS_ALARM_TOPIC_ARN        SNS topic for all alarms
 *   logRetentionDays                             log retention (a CloudWatch Logs value, e.g. 30, 90)
 *   logLevel                                     DEBUG | INFO | WARN | ERROR
 */
import { resolve } from 'node:path';
import { App } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  AIAAS_ALARM_TOPIC_ARN,
  AIAAS_BUCKET_NAME,
  AIAAS_EXISTING_BUCKET,
  AIAAS_MANIFEST,
} from '../functions/shared/env.js';
import { loadManifest } from '../functions/shared/manifest.js';
import { defineAiaas } from './aiaas.js';
import type { FunctionLogLevel } from './constructs/function-defaults.js';
import { paths } from './paths.js';

const app = new App();
const setting = (key: string, env?: string): string | undefined => {
  const value = app.node.tryGetContext(key) ?? (env ? process.env[env] : undefined);
  return value === undefined || value === '' ? undefined : String(value);
};

const manifestPath = resolve(setting('manifest', AIAAS_MANIFEST) ?? paths.manifest);
const existingBucketName = setting('existingBucketName', AIAAS_EXISTING_BUCKET);
const bucketName = setting('bucketName', AIAAS_BUCKET_NAME);
const alarmTopicArn = setting('alarmTopicArn', AIAAS_ALARM_TOPIC_ARN);
const logRetentionDays = setting('logRetentionDays');
const logLevel = setting('logLevel');
if (logLevel !== undefined && !['DEBUG', 'INFO', 'WARN', 'ERROR'].includes(logLevel)) {
  throw new Error(`logLevel must be DEBUG, INFO, WARN or ERROR, not "${logLevel}"`);
}

defineAiaas(app, {
  manifest: loadManifest(manifestPath),
  ...(existingBucketName ? { existingBucketName } : {}),
  ...(bucketName ? { bucketName } : {}),
  ...(alarmTopicArn ? { alarmTopicArn } : {}),
  ...(logRetentionDays ? { logRetention: Number(logRetentionDays) as RetentionDays } : {}),
  ...(logLevel ? { logLevel: logLevel as FunctionLogLevel } : {}),
});
app.synth();
