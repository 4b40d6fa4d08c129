import { Aws } from 'aws-cdk-lib';
import { Effect, type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { acknowledgeWildcardResources } from '../nag.js';

export interface RegistryAccess {
  /** Registry bucket name (a plain name or one built from pseudo parameters, never a cross-stack reference). */
  readonly bucketName: string;
  /** Key prefixes (ending in `/`) the role may read. */
  readonly read?: readonly string[];
  /** Single keys the role may read (an alias pointer, say), without the rest of their folder. */
  readonly readKeys?: readonly string[];
  /**
   * Model roots (`models/<name>/`) the role may publish versions to and move aliases of (implies
   * read). It may only create objects there, never overwrite or delete one: S3 refuses a PUT that
   * does not carry `If-None-Match`, except on an alias pointer, which may also be replaced with
   * `If-Match` (history entries stay create-only).
   */
  readonly write?: readonly string[];
}

export function bucketArn(bucketName: string): string {
  return `arn:${Aws.PARTITION}:s3:::${bucketName}`;
}

/**
 * Grants a role exactly the registry keys it needs: GetObject on the read prefixes and keys;
 * under each model root it writes, PutObject only as a conditional write (`s3:if-none-match`
 * present: create-only, so published versions, number claims, reports and the append-only alias
 * history can be added to but never overwritten; `s3:if-match` present: compare-and-swap, for the
 * alias pointers only), with an explicit deny on any history write that is not create-only; no
 * DeleteObject at all (the registry's protocols never delete; `aiaas gc` runs with an operator's
 * credentials); and ListBucket only with an `s3:prefix` inside what it may read. Every statement
 * requires the bucket to belong to this account, so a bucket of the same name elsewhere is never
 * touched. Nothing is granted on other prefixes, not even key names.
 *
 * Writers must upload with single PUTs: multipart uploads carry no conditional header until
 * completed, so this policy refuses them.
 *
 * Note: S3 answers a GET of a missing key with 404 only to callers allowed to list the bucket;
 * whether a prefix-conditioned ListBucket counts for that is not verified here (no AWS account),
 * so code reading keys that may not exist should be ready for 403 (AccessDenied) as well.
 */
export function grantRegistryAccess(role: IRole, access: RegistryAccess): void {
  const write = [...(access.write ?? [])];
  const read = [...new Set([...(access.read ?? []), ...write])];
  const readKeys = [...new Set(access.readKeys ?? [])];
  for (const prefix of read) {
    if (!prefix.endsWith('/')) throw new Error(`Registry prefix "${prefix}" must end with "/"`);
  }
  for (const root of write) {
    if (!/^models\/[a-z0-9][a-z0-9_-]{0,62}\/$/.test(root)) {
      throw new Error(`Registry write root "${root}" must be a model root, models/<name>/`);
    }
  }
  for (const key of readKeys) {
    if (key.endsWith('/') || key.includes('*')) throw new Error(`Registry key "${key}" must name one object`);
  }
  const arn = bucketArn(access.bucketName);
  const objects = (prefixes: readonly string[], below = '') =>
    prefixes.map((prefix) => `${arn}/${prefix}${below}*`);
  const sameAccount = { StringEquals: { 's3:ResourceAccount': Aws.ACCOUNT_ID } };

  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'ReadOwnPrefixes',
      actions: ['s3:GetObject'],
      resources: [...objects(read), ...readKeys.map((key) => `${arn}/${key}`)],
      conditions: sameAccount,
    }),
  );
  if (write.length) {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'CreateOnlyUnderOwnModel',
        actions: ['s3:PutObject'],
        resources: objects(write),
        conditions: { ...sameAccount, Null: { 's3:if-none-match': 'false' } },
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'SwapOwnAliasPointers',
        actions: ['s3:PutObject'],
        resources: objects(write, 'aliases/'),
        conditions: { ...sameAccount, Null: { 's3:if-match': 'false' } },
      }),
    );
    // `aliases/*` above also matches history entries: a history write must be create-only.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'HistoryIsAppendOnly',
        effect: Effect.DENY,
        actions: ['s3:PutObject'],
        resources: objects(write, 'aliases/*/history/'),
        conditions: { Null: { 's3:if-none-match': 'true' } },
      }),
    );
  }
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'ListOwnPrefixes',
      actions: ['s3:ListBucket'],
      resources: [arn],
      conditions: {
        ...sameAccount,
        StringLike: { 's3:prefix': [...read.map((prefix) => `${prefix}*`), ...readKeys] },
      },
    }),
  );
  acknowledgeWildcardResources(
    role,
    [...objects(read), ...objects(write, 'aliases/'), ...objects(write, 'aliases/*/history/')],
    "The wildcard is the trailing key wildcard of this model's own registry prefix (models/<name>/, a folder of it, or its dataset prefix): object ARNs cannot be enumerated in advance, and no other prefix is granted.",
  );
}
