/**
 * Grants on the model registry bucket, one model's keys at a time, returning `iam.Grant` as CDK's
 * own grants do (shaped like aws-s3's `BucketGrants`): `serve` for an inference function,
 * `retrain` for a retraining function, `rollout` for a rollout function (one alias's moves),
 * `keys` for any other exact set of prefixes. Nothing is ever granted on the whole bucket, and
 * nothing outside this account's bucket of that name.
 */
import { Aws } from 'aws-cdk-lib';
import { Effect, Grant, type IGrantable, type PolicyStatementProps } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { keys } from '../../functions/shared/registry/layout.js';
import { acknowledgeWildcardResources } from '../nag.js';

/** Exactly which registry keys a grantee may use (see RegistryGrants.keys). */
export interface RegistryKeys {
  /**
   * Key prefixes (ending in `/`) the grantee may read.
   *
   * @default - no prefix
   */
  readonly read?: readonly string[];
  /**
   * Single keys the grantee may read (an alias pointer, say), without the rest of their folder.
   *
   * @default - no single key
   */
  readonly readKeys?: readonly string[];
  /**
   * Model roots (`models/<name>/`) the grantee may publish versions to and move aliases of
   * (implies read). It may only create objects there, never overwrite or delete one: S3 refuses a
   * PUT that does not carry `If-None-Match`, except on an alias pointer, which may also be
   * replaced with `If-Match` (history entries stay create-only).
   *
   * @default - no writes
   */
  readonly write?: readonly string[];
  /**
   * Alias pointers (`models/<name>/aliases/<alias>.json`) the grantee may move, and nothing else
   * of their model: it may create the pointer (`If-None-Match`) or replace it (`If-Match`), and
   * append to that alias's history (`models/<name>/aliases/<alias>/history/`, create-only); it
   * reads both (implies read). Other aliases, versions, claims and reports stay read-only or
   * out of reach.
   *
   * @default - no alias moves
   */
  readonly moveAliases?: readonly string[];
}

/** A registry key prefix of one model: `models/<name>/`. */
const MODEL_ROOT = /^models\/[a-z0-9][a-z0-9_-]{0,62}\/$/;
/** One alias pointer of one model: `models/<name>/aliases/<alias>.json`. */
const ALIAS_POINTER = /^models\/[a-z0-9][a-z0-9_-]{0,62}\/aliases\/[a-z0-9][a-z0-9_-]{0,62}\.json$/;

/**
 * The registry's grants. Every statement requires the bucket to belong to this account
 * (`s3:ResourceAccount`), so a bucket of the same name elsewhere is never touched, and none
 * grants anything on other prefixes, not even key names.
 *
 * Note: S3 answers a GET of a missing key with 404 only to callers allowed to list the bucket;
 * whether a prefix-conditioned ListBucket counts for that is not verified here (no AWS account),
 * so code reading keys that may not exist should be ready for 403 (AccessDenied) as well.
 */
export class RegistryGrants {
  /** Grants on `bucket` (created in this stack, or imported with `Bucket.fromBucketName`). */
  static fromBucket(bucket: IBucket): RegistryGrants {
    return new RegistryGrants(bucket);
  }

  private constructor(readonly bucket: IBucket) {}

  /**
   * What serving one alias of a model needs: GetObject on that alias's pointer and on the
   * model's version files (not other aliases, the history, claims or reports), and ListBucket
   * limited to those keys.
   */
  serve(grantee: IGrantable, modelName: string, aliasName: string): Grant {
    return this.keys(grantee, {
      read: [`models/${modelName}/versions/`],
      readKeys: [`models/${modelName}/aliases/${aliasName}.json`],
    });
  }

  /**
   * What retraining a model needs: read its dataset prefix; publish versions, claims and reports
   * under `models/<name>/` and move its aliases, as conditional writes only (see `keys`); no deletes.
   */
  retrain(grantee: IGrantable, modelName: string, datasetPrefix: string): Grant {
    if (!isOwnDatasetPrefix(modelName, datasetPrefix)) {
      throw new Error(
        `Retraining of "${modelName}" may read only ${keys.dataset(modelName)} or a folder below it, not "${datasetPrefix}"`,
      );
    }
    return this.keys(grantee, { read: [datasetPrefix], write: [`models/${modelName}/`] });
  }

  /**
   * What stepping a rollout of one alias needs: read the model's versions (metadata and files, which
   * a pointer copies) and that alias's pointer and history; move that alias only (create or
   * compare-and-swap its pointer, append to its history, see `keys`); nothing else is written and
   * nothing deleted.
   */
  rollout(grantee: IGrantable, modelName: string, aliasName: string): Grant {
    return this.keys(grantee, {
      read: [`models/${modelName}/versions/`],
      moveAliases: [keys.alias(modelName, aliasName)],
    });
  }

  /**
   * Exactly these keys: GetObject on the read prefixes and keys; under each model root written,
   * PutObject only as a conditional write (`s3:if-none-match` present: create-only, so published
   * versions, number claims, reports and the append-only alias history can be added to but never
   * overwritten; `s3:if-match` present: compare-and-swap, for the alias pointers only), with an
   * explicit deny on any history write that is not create-only; no DeleteObject at all (the
   * registry's protocols never delete; `aiaas gc` runs with an operator's credentials); and
   * ListBucket only with an `s3:prefix` inside what may be read. An alias of `moveAliases` gets
   * the same conditions on its pointer and its history only.
   *
   * Writers must upload with single PUTs: multipart uploads carry no conditional header until
   * completed, so this policy refuses them.
   */
  keys(grantee: IGrantable, keys: RegistryKeys): Grant {
    const write = [...(keys.write ?? [])];
    const pointers = [...new Set(keys.moveAliases ?? [])];
    for (const pointer of pointers) {
      if (!ALIAS_POINTER.test(pointer)) {
        throw new Error(
          `Registry alias "${pointer}" must be an alias pointer, models/<name>/aliases/<alias>.json`,
        );
      }
    }
    const histories = pointers.map((pointer) => `${pointer.slice(0, -'.json'.length)}/history/`);
    const read = [...new Set([...(keys.read ?? []), ...write, ...histories])];
    const readKeys = [...new Set([...(keys.readKeys ?? []), ...pointers])];
    for (const prefix of read) {
      if (!prefix.endsWith('/')) throw new Error(`Registry prefix "${prefix}" must end with "/"`);
    }
    for (const root of write) {
      if (!MODEL_ROOT.test(root)) {
        throw new Error(`Registry write root "${root}" must be a model root, models/<name>/`);
      }
    }
    for (const key of readKeys) {
      if (key.endsWith('/') || key.includes('*')) {
        throw new Error(`Registry key "${key}" must name one object`);
      }
    }
    const objects = (prefixes: readonly string[], below = '') =>
      prefixes.map((prefix) => this.bucket.arnForObjects(`${prefix}${below}*`));
    const sameAccount = { StringEquals: { 's3:ResourceAccount': Aws.ACCOUNT_ID } };

    let grant = statement(grantee, {
      sid: 'ReadOwnPrefixes',
      actions: ['s3:GetObject'],
      resources: [...objects(read), ...readKeys.map((key) => this.bucket.arnForObjects(key))],
      conditions: sameAccount,
    });
    if (write.length) {
      grant = grant
        .combine(
          statement(grantee, {
            sid: 'CreateOnlyUnderOwnModel',
            actions: ['s3:PutObject'],
            resources: objects(write),
            conditions: { ...sameAccount, Null: { 's3:if-none-match': 'false' } },
          }),
        )
        .combine(
          statement(grantee, {
            sid: 'SwapOwnAliasPointers',
            actions: ['s3:PutObject'],
            resources: objects(write, 'aliases/'),
            conditions: { ...sameAccount, Null: { 's3:if-match': 'false' } },
          }),
        )
        // `aliases/*` above also matches history entries: a history write must be create-only.
        .combine(
          statement(grantee, {
            sid: 'HistoryIsAppendOnly',
            effect: Effect.DENY,
            actions: ['s3:PutObject'],
            resources: objects(write, 'aliases/*/history/'),
            conditions: { Null: { 's3:if-none-match': 'true' } },
          }),
        );
    }
    if (pointers.length) {
      const pointerArns = pointers.map((pointer) => this.bucket.arnForObjects(pointer));
      grant = grant
        .combine(
          statement(grantee, {
            sid: 'CreateOnlyOwnAliasObjects',
            actions: ['s3:PutObject'],
            resources: [...objects(histories), ...pointerArns],
            conditions: { ...sameAccount, Null: { 's3:if-none-match': 'false' } },
          }),
        )
        .combine(
          statement(grantee, {
            sid: 'SwapOwnAliasPointer',
            actions: ['s3:PutObject'],
            resources: pointerArns,
            conditions: { ...sameAccount, Null: { 's3:if-match': 'false' } },
          }),
        )
        // Nothing above lets a history entry be replaced; the Deny keeps it so whatever else the
        // grantee's role is given.
        .combine(
          statement(grantee, {
            sid: 'AliasHistoryIsAppendOnly',
            effect: Effect.DENY,
            actions: ['s3:PutObject'],
            resources: objects(histories),
            conditions: { Null: { 's3:if-none-match': 'true' } },
          }),
        );
    }
    grant = grant.combine(
      statement(grantee, {
        sid: 'ListOwnPrefixes',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: {
          ...sameAccount,
          StringLike: { 's3:prefix': [...read.map((prefix) => `${prefix}*`), ...readKeys] },
        },
      }),
    );
    const principal = grantee.grantPrincipal;
    if (Construct.isConstruct(principal)) {
      acknowledgeWildcardResources(
        principal,
        [...objects(read), ...objects(write, 'aliases/'), ...objects(write, 'aliases/*/history/')],
        "The wildcard is the trailing key wildcard of this model's own registry prefix (models/<name>/, a folder of it such as one alias's history, or its dataset prefix): object ARNs cannot be enumerated in advance, and no other prefix is granted.",
      );
    }
    return grant;
  }
}

/**
 * One statement on the grantee's identity policy, as `Grant.addToPrincipal` adds it, with its
 * Sid (and, for the history guard, Deny) kept so the policy reads as before.
 */
function statement(
  grantee: IGrantable,
  props: Required<Pick<PolicyStatementProps, 'sid' | 'actions' | 'resources' | 'conditions'>> & {
    readonly effect?: Effect;
  },
): Grant {
  const grant = Grant.addToPrincipal({
    grantee,
    actions: [...props.actions],
    resourceArns: [...props.resources],
    conditions: props.conditions,
  });
  for (const added of grant.principalStatements) {
    added.sid = props.sid;
    if (props.effect) added.effect = props.effect;
  }
  return grant;
}

/** `datasets/<model>/` or a folder below it, with no wildcard or `..`: what retraining may read. */
export function isOwnDatasetPrefix(modelName: string, prefix: string): boolean {
  return (
    prefix.startsWith(keys.dataset(modelName)) &&
    prefix.endsWith('/') &&
    !prefix.includes('..') &&
    !/[*?]/.test(prefix)
  );
}
