import { Aws, CfnOutput, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import { Bucket, type IBucket } from 'aws-cdk-lib/aws-s3';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { ModelRegistryBucket, type ModelRegistryBucketProps } from '../constructs/registry-bucket.js';

/** S3 bucket names: 3-63 of a-z, 0-9, '.', '-', starting and ending with a letter or digit. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

interface RegistryStackCommonProps extends StackProps {
  /** The application name (manifest `app`): in the SSM parameter's name and the default bucket name. */
  readonly appName: string;
}

/** Create the registry bucket (ModelRegistryBucket: its settings apply). */
export interface CreateRegistryStackProps extends RegistryStackCommonProps, ModelRegistryBucketProps {
  /** Absent when creating: it is what selects AdoptRegistryStackProps. */
  readonly existingBucketName?: undefined;
  /**
   * Name of the bucket to create.
   *
   * @default `<app>-registry-<account>-<region>`: predictable, so model stacks, the CLI and
   * operators find it without cross-stack exports, and unique per account and region.
   */
  readonly bucketName?: string;
}

/**
 * Adopt an existing bucket as the registry: nothing is created, so none of the bucket settings
 * apply (the bucket keeps its own).
 */
export interface AdoptRegistryStackProps extends RegistryStackCommonProps {
  /** The bucket adopted; it must be in the same account and region as the model stacks. */
  readonly existingBucketName: string;
}

/** Either create the registry bucket or adopt an existing one. */
export type RegistryStackProps = CreateRegistryStackProps | AdoptRegistryStackProps;

/**
 * The model registry: one S3 bucket (created secure by default, or an existing one adopted by
 * name). Model stacks address it by name, not through CloudFormation exports, so this stack never
 * gets stuck on an export in use and each model stack deploys on its own.
 */
export class RegistryStack extends Stack {
  /** The registry bucket's name: a plain name, or built from `AWS::AccountId`/`AWS::Region`. */
  readonly bucketName: string;
  /**
   * The registry bucket, for this stack's own use. Other stacks import it by `bucketName`
   * (`Bucket.fromBucketName`, as ModelStack does): this object's references would become a
   * CloudFormation export there.
   */
  readonly bucket: IBucket;
  /** The created registry (absent when adopting an existing bucket). */
  readonly registry?: ModelRegistryBucket;
  /** SSM parameter `/<app>/registry/bucket-name`: where tools find the registry. */
  readonly bucketNameParameter: StringParameter;

  constructor(scope: Construct, id: string, props: RegistryStackProps) {
    super(scope, id, props);
    // The types already say this; checked again for JavaScript callers and casts.
    if (props.existingBucketName !== undefined && 'bucketName' in props && props.bucketName !== undefined) {
      throw new Error('Give either existingBucketName (adopt a bucket) or bucketName (create one), not both');
    }
    const checked = (name: string) => {
      if (!BUCKET_NAME.test(name)) throw new Error(`Invalid S3 bucket name "${name}"`);
      return name;
    };

    if (props.existingBucketName !== undefined) {
      this.bucketName = checked(props.existingBucketName);
      this.bucket = Bucket.fromBucketName(this, 'Bucket', props.existingBucketName);
    } else {
      this.bucketName =
        props.bucketName !== undefined ? checked(props.bucketName) : defaultBucketName(props.appName);
      this.registry = new ModelRegistryBucket(this, 'Registry', { ...props, bucketName: this.bucketName });
      this.bucket = this.registry.bucket;
    }
    // Also what keeps this stack non-empty when it adopts a bucket.
    this.bucketNameParameter = new StringParameter(this, 'BucketNameParameter', {
      parameterName: `/${props.appName}/registry/bucket-name`,
      stringValue: this.bucket.bucketName,
      description: `aiaas (${props.appName}): name of the model registry bucket`,
    });
    new CfnOutput(this, 'BucketName', {
      value: this.bucket.bucketName,
      description: 'Registry bucket (AIAAS_BUCKET for the CLI)',
    });
  }
}

/** `<app>-registry-<account>-<region>`, with the app name made bucket-safe. */
export function defaultBucketName(appName: string): string {
  const prefix = `${appName.replace(/_/g, '-')}-registry`;
  // 12-digit account id + the longest region names (15) + 2 separators must fit in 63.
  if (prefix.length > 63 - 12 - 15 - 2) {
    throw new Error(`App name "${appName}" is too long for the default registry bucket name; set bucketName`);
  }
  return Fn.join('-', [prefix, Aws.ACCOUNT_ID, Aws.REGION]);
}
