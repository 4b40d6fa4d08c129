import { Aws } from 'aws-cdk-lib';
import { type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { acknowledgeWildcardResources } from '../nag.js';

export interface RegistryAccess {
  /** Registry bucket name (a plain name or one built from pseudo parameters, never a cross-stack reference). */
  readonly bucketName: string;
  /** Key prefixes (ending in `/`) the role may read. */
  readonly read: readonly string[];
  /** Key prefixes (ending in `/`) the role may write and delete under (implies read). */
  readonly write?: readonly string[];
}

export function bucketArn(bucketName: string): string {
  return `arn:${Aws.PARTITION}:s3:::${bucketName}`;
}

/**
 * Grants a role exactly the registry keys it needs: GetObject under the read prefixes,
 * PutObject/DeleteObject under the write prefixes, and ListBucket only with an `s3:prefix`
 * inside them. Every statement requires the bucket to belong to this account, so a bucket of the
 * same name elsewhere is never read. Nothing is granted on other prefixes, not even key names.
 *
 * Note: S3 answers a GET of a missing key with 404 only to callers allowed to list the bucket;
 * whether a prefix-conditioned ListBucket counts for that is not verified here (no AWS account),
 * so code reading keys that may not exist should be ready for 403 (AccessDenied) as well.
 */
export function grantRegistryAccess(role: IRole, access: RegistryAccess): void {
  const write = [...(access.write ?? [])];
  const read = [...new Set([...access.read, ...write])];
  for (const prefix of read) {
    if (!prefix.endsWith('/')) throw new Error(`Registry prefix "${prefix}" must end with "/"`);
  }
  const arn = bucketArn(access.bucketName);
  const objects = (prefixes: readonly string[]) => prefixes.map((prefix) => `${arn}/${prefix}*`);
  const sameAccount = { StringEquals: { 's3:ResourceAccount': Aws.ACCOUNT_ID } };

  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'ReadOwnPrefixes',
      actions: ['s3:GetObject'],
      resources: objects(read),
      conditions: sameAccount,
    }),
  );
  if (write.length) {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'WriteOwnPrefixes',
        actions: ['s3:PutObject', 's3:DeleteObject'],
        resources: objects(write),
        conditions: sameAccount,
      }),
    );
  }
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'ListOwnPrefixes',
      actions: ['s3:ListBucket'],
      resources: [arn],
      conditions: { ...sameAccount, StringLike: { 's3:prefix': read.map((prefix) => `${prefix}*`) } },
    }),
  );
  acknowledgeWildcardResources(
    role,
    objects(read),
    "The wildcard is the trailing key wildcard of this model's own registry prefix (models/<name>/ or its dataset prefix): object ARNs cannot be enumerated in advance, and no other prefix is granted.",
  );
}
