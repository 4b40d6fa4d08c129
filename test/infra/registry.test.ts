import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp, exampleManifest } from './helpers.js';

const created = buildApp(exampleManifest());
const registry = Template.fromStack(created.registry);

/** The registry bucket (the versioned one); the other bucket is its access log destination. */
function registryBucket() {
  const buckets = registry.findResources('AWS::S3::Bucket', {
    Properties: { VersioningConfiguration: Match.anyValue() },
  });
  const ids = Object.keys(buckets);
  expect(ids).toHaveLength(1);
  return { id: ids[0]!, resource: buckets[ids[0]!]! };
}

describe('registry stack', () => {
  it('is named <app>-Registry', () => {
    expect(created.registry.stackName).toBe('aiaas-Registry');
  });

  it('creates a versioned, encrypted, private registry bucket with a predictable name', () => {
    registry.resourceCountIs('AWS::S3::Bucket', 2);
    registry.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: {
        'Fn::Join': ['-', ['aiaas-registry', { Ref: 'AWS::AccountId' }, { Ref: 'AWS::Region' }]],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });

  it('expires noncurrent versions and aborts multipart uploads left incomplete after 3 days', () => {
    const { resource } = registryBucket();
    const rules = (resource.Properties as { LifecycleConfiguration: { Rules: Record<string, unknown>[] } })
      .LifecycleConfiguration.Rules;
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Status: 'Enabled',
          NoncurrentVersionExpiration: { NoncurrentDays: 90, NewerNoncurrentVersions: 3 },
        }),
        {
          Id: 'abort-incomplete-multipart-uploads',
          Status: 'Enabled',
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 },
        },
      ]),
    );
  });

  it('logs server access to a separate, itself secure, log bucket', () => {
    const { resource } = registryBucket();
    const logging = (
      resource.Properties as { LoggingConfiguration: { DestinationBucketName: { Ref: string } } }
    ).LoggingConfiguration;
    expect(logging).toMatchObject({ LogFilePrefix: 'registry/' });
    const logBucketId = logging.DestinationBucketName.Ref;
    const logBucket = registry.toJSON().Resources[logBucketId];
    expect(logBucket.Type).toBe('AWS::S3::Bucket');
    expect(logBucket.DeletionPolicy).toBe('Retain');
    expect(logBucket.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    // Delivery by the logging service through the bucket policy, not ACLs.
    registry.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logBucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 's3:PutObject',
            Principal: { Service: 'logging.s3.amazonaws.com' },
          }),
        ]),
      },
    });
  });

  it('denies non-TLS and pre-TLS-1.2 requests on both buckets', () => {
    const policies = registry.findResources('AWS::S3::BucketPolicy');
    expect(Object.keys(policies)).toHaveLength(2);
    for (const policy of Object.values(policies)) {
      expect(policy.Properties.PolicyDocument.Statement).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          expect.objectContaining({
            Effect: 'Deny',
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
          }),
        ]),
      );
    }
  });

  it('retains the registry when the stack is deleted', () => {
    const { resource } = registryBucket();
    expect(resource.DeletionPolicy).toBe('Retain');
    expect(resource.UpdateReplacePolicy).toBe('Retain');
  });

  it('publishes the bucket name as an output and an SSM parameter', () => {
    registry.hasOutput('BucketName', { Value: { Ref: registryBucket().id } });
    registry.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/aiaas/registry/bucket-name',
      Type: 'String',
      Value: { Ref: registryBucket().id },
    });
  });
});

describe('registry stack adopting an existing bucket', () => {
  const adopted = buildApp(exampleManifest(), { existingBucketName: 'acme-models-prod' });

  it('creates no bucket and points models at the adopted one', () => {
    const template = Template.fromStack(adopted.registry);
    template.resourceCountIs('AWS::S3::Bucket', 0);
    template.resourceCountIs('AWS::S3::BucketPolicy', 0);
    template.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/aiaas/registry/bucket-name',
      Value: 'acme-models-prod',
    });
    expect(adopted.registry.bucketName).toBe('acme-models-prod');
    Template.fromStack(adopted.models.get('diabetes')!).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ AIAAS_BUCKET: 'acme-models-prod' }) },
    });
  });

  it('refuses to both adopt and create', () => {
    expect(() =>
      buildApp(exampleManifest(), { existingBucketName: 'acme-models-prod', bucketName: 'acme-new' }),
    ).toThrow(/either existingBucketName .* or bucketName/);
  });

  it('rejects an invalid bucket name', () => {
    expect(() => buildApp(exampleManifest(), { existingBucketName: 'Not_A_Bucket' })).toThrow(
      /Invalid S3 bucket name/,
    );
  });
});
