/**
 * What the synthesized IAM policies let each function do to the registry, evaluated request by
 * request the way IAM does for these statements (an explicit Deny wins; an Allow needs its action,
 * a resource pattern and every condition to match), with the conditional-write headers a request
 * carries (S3 sets `s3:if-none-match` / `s3:if-match` from If-None-Match / If-Match).
 */
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp, exampleManifest } from './helpers.js';
import { ROLLOUT_ALIAS, ROLLOUT_MODEL, rolloutManifest } from './rollout-manifest.js';

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const result = buildApp(exampleManifest());
const template = Template.fromStack(result.models.get('diabetes')!);

/** A CloudFormation value as text, with references as <Name>. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (v.Ref) return `<${v.Ref}>`;
  if (v['Fn::Join']) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(text).join(sep);
  }
  return JSON.stringify(value);
}

function statementsOf(rolePrefix: string, of: Template = template): Statement[] {
  return Object.values(of.findResources('AWS::IAM::Policy'))
    .filter((policy) =>
      (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref.startsWith(rolePrefix)),
    )
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[])
    .filter((s) => [s.Action].flat().some((a) => a.startsWith('s3:')));
}

const BUCKET = 'arn:<AWS::Partition>:s3:::aiaas-registry-<AWS::AccountId>-<AWS::Region>';

interface Request {
  readonly action: string;
  readonly key?: string;
  readonly prefix?: string;
  readonly ifNoneMatch?: boolean;
  readonly ifMatch?: boolean;
}

function glob(pattern: string, value: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return regex.test(value);
}

function matches(statement: Statement, request: Request): boolean {
  if (![statement.Action].flat().includes(request.action)) return false;
  const resource = request.key === undefined ? BUCKET : `${BUCKET}/${request.key}`;
  if (
    ![statement.Resource]
      .flat()
      .map(text)
      .some((pattern) => glob(pattern, resource))
  )
    return false;
  const context: Record<string, string | undefined> = {
    's3:ResourceAccount': '<AWS::AccountId>',
    's3:prefix': request.prefix,
    's3:if-none-match': request.ifNoneMatch ? '*' : undefined,
    's3:if-match': request.ifMatch ? '"etag"' : undefined,
  };
  for (const [operator, entries] of Object.entries(statement.Condition ?? {})) {
    for (const [key, expected] of Object.entries(entries)) {
      const actual = context[key];
      const values = [expected].flat().map(text);
      const ok =
        operator === 'Null'
          ? values.includes(String(actual === undefined))
          : operator === 'StringEquals'
            ? actual !== undefined && values.includes(actual)
            : operator === 'StringLike'
              ? actual !== undefined && values.some((pattern) => glob(pattern, actual))
              : false;
      if (!ok) return false;
    }
  }
  return true;
}

function allowed(statements: readonly Statement[], request: Request): boolean {
  if (statements.some((s) => s.Effect === 'Deny' && matches(s, request))) return false;
  return statements.some((s) => s.Effect === 'Allow' && matches(s, request));
}

const retraining = statementsOf('RetrainingRole');
const inference = statementsOf('InferenceRole');
const m = 'models/diabetes';
const put = (key: string, headers: Partial<Request> = {}) => ({ action: 's3:PutObject', key, ...headers });

describe('the retraining role and the registry', () => {
  it('may create version files, claims, reports and history entries, only as create-only writes', () => {
    for (const key of [
      `${m}/versions/7/model.json`,
      `${m}/versions/7/group1-shard1of1.bin`,
      `${m}/versions/7/metadata.json`,
      `${m}/claims/7/abc.json`,
      `${m}/claims/7/abc.lost`,
      `${m}/reports/7/training-report.svg`,
      `${m}/aliases/live/history/0000000003/abc.json`,
      `${m}/aliases/live/history/0000000003/abc.lost`,
      `${m}/aliases/live.json`,
    ]) {
      expect(allowed(retraining, put(key, { ifNoneMatch: true })), key).toBe(true);
      expect(allowed(retraining, put(key)), `overwrite ${key}`).toBe(false);
    }
  });

  it('may replace an alias pointer with If-Match, but never a version file or a history entry', () => {
    expect(allowed(retraining, put(`${m}/aliases/live.json`, { ifMatch: true }))).toBe(true);
    expect(allowed(retraining, put(`${m}/aliases/staging.json`, { ifMatch: true }))).toBe(true);
    for (const key of [
      `${m}/versions/7/metadata.json`,
      `${m}/versions/7/group1-shard1of1.bin`,
      `${m}/claims/7/abc.json`,
      `${m}/aliases/live/history/0000000003/abc.json`,
    ]) {
      expect(allowed(retraining, put(key, { ifMatch: true })), key).toBe(false);
    }
  });

  it('may delete nothing, and write nothing outside its own model', () => {
    expect(retraining.flatMap((s) => [s.Action].flat())).not.toContain('s3:DeleteObject');
    for (const key of [`${m}/versions/1/model.json`, `${m}/aliases/live/history/0000000001/x.json`]) {
      expect(allowed(retraining, { action: 's3:DeleteObject', key })).toBe(false);
    }
    for (const key of [
      'models/iris/versions/9/model.json',
      'models/iris/aliases/live.json',
      'datasets/diabetes/x.csv',
    ]) {
      expect(allowed(retraining, put(key, { ifNoneMatch: true })), key).toBe(false);
      expect(allowed(retraining, put(key, { ifMatch: true })), key).toBe(false);
    }
    expect(allowed(retraining, { action: 's3:GetObject', key: 'datasets/diabetes/x.csv' })).toBe(true);
  });

  it('states the conditions with the S3 condition keys', () => {
    const bySid = Object.fromEntries(retraining.map((s) => [s.Sid, s]));
    expect(bySid.CreateOnlyUnderOwnModel?.Condition?.Null).toEqual({ 's3:if-none-match': 'false' });
    expect(bySid.SwapOwnAliasPointers?.Condition?.Null).toEqual({ 's3:if-match': 'false' });
    expect(bySid.HistoryIsAppendOnly).toMatchObject({
      Effect: 'Deny',
      Action: 's3:PutObject',
      Condition: { Null: { 's3:if-none-match': 'true' } },
    });
  });
});

describe('the inference role and the registry', () => {
  it('reads its alias pointer and version files, and nothing else', () => {
    const get = (key: string) => allowed(inference, { action: 's3:GetObject', key });
    expect(get(`${m}/aliases/live.json`)).toBe(true);
    expect(get(`${m}/versions/3/metadata.json`)).toBe(true);
    expect(get(`${m}/versions/3/group1-shard1of1.bin`)).toBe(true);
    for (const key of [
      `${m}/aliases/staging.json`,
      `${m}/aliases/live/history/0000000001/x.json`,
      `${m}/claims/3/x.json`,
      `${m}/reports/3/training-report.svg`,
      'models/iris/versions/1/model.json',
      'datasets/diabetes/x.csv',
    ]) {
      expect(get(key), key).toBe(false);
    }
    // Listing only to tell a missing key from a denied one (S3ObjectReader).
    expect(allowed(inference, { action: 's3:ListBucket', prefix: `${m}/aliases/live.json` })).toBe(true);
    expect(allowed(inference, { action: 's3:ListBucket', prefix: `${m}/versions/3/metadata.json` })).toBe(
      true,
    );
    expect(allowed(inference, { action: 's3:ListBucket', prefix: `${m}/` })).toBe(false);
    for (const action of ['s3:PutObject', 's3:DeleteObject']) {
      expect(
        allowed(inference, { action, key: `${m}/aliases/live.json`, ifMatch: true, ifNoneMatch: true }),
      ).toBe(false);
    }
  });
});

describe('the rollout role and the registry', () => {
  const rollout = statementsOf(
    'RolloutRole',
    Template.fromStack(buildApp(rolloutManifest()).models.get(ROLLOUT_MODEL)!),
  );
  const r = `models/${ROLLOUT_MODEL}`;
  const pointer = `${r}/aliases/${ROLLOUT_ALIAS}.json`;
  const history = `${r}/aliases/${ROLLOUT_ALIAS}/history`;
  const headers = [{}, { ifNoneMatch: true }, { ifMatch: true }, { ifNoneMatch: true, ifMatch: true }];

  it("appends to its alias's history, create-only, and never replaces an entry", () => {
    for (const key of [`${history}/0000000004/abc.json`, `${history}/0000000004/abc.lost`]) {
      expect(allowed(rollout, put(key, { ifNoneMatch: true })), key).toBe(true);
      expect(allowed(rollout, put(key)), `overwrite ${key}`).toBe(false);
      expect(allowed(rollout, put(key, { ifMatch: true })), `swap ${key}`).toBe(false);
    }
  });

  it('moves its alias pointer only by compare-and-swap (or creates it), never blindly', () => {
    expect(allowed(rollout, put(pointer, { ifMatch: true }))).toBe(true);
    expect(allowed(rollout, put(pointer, { ifNoneMatch: true }))).toBe(true);
    expect(allowed(rollout, put(pointer))).toBe(false);
  });

  it("writes nothing else: not its model's versions, claims, reports or other aliases, nor other models", () => {
    for (const key of [
      `${r}/versions/7/model.json`,
      `${r}/versions/7/metadata.json`,
      `${r}/claims/7/abc.json`,
      `${r}/reports/7/training-report.svg`,
      `${r}/aliases/live.json`,
      `${r}/aliases/live/history/0000000004/abc.json`,
      `${r}/aliases/${ROLLOUT_ALIAS}-2.json`,
      `${r}/aliases/${ROLLOUT_ALIAS}.json.bak`,
      `${r}/aliases/${ROLLOUT_ALIAS}/other/x.json`,
      `models/plain/aliases/${ROLLOUT_ALIAS}.json`,
      `models/plain/aliases/${ROLLOUT_ALIAS}/history/0000000001/abc.json`,
      `datasets/${ROLLOUT_MODEL}/x.csv`,
    ]) {
      for (const header of headers) {
        expect(allowed(rollout, put(key, header)), `${key} ${JSON.stringify(header)}`).toBe(false);
      }
    }
  });

  it('may delete nothing', () => {
    expect(rollout.flatMap((s) => [s.Action].flat())).not.toContain('s3:DeleteObject');
    for (const key of [pointer, `${history}/0000000001/abc.json`, `${r}/versions/1/model.json`]) {
      expect(allowed(rollout, { action: 's3:DeleteObject', key })).toBe(false);
    }
  });

  it("reads its model's versions and its alias's pointer and history, and nothing else", () => {
    const get = (key: string) => allowed(rollout, { action: 's3:GetObject', key });
    for (const key of [
      pointer,
      `${history}/0000000004/abc.json`,
      `${r}/versions/3/metadata.json`,
      `${r}/versions/3/group1-shard1of1.bin`,
    ]) {
      expect(get(key), key).toBe(true);
    }
    for (const key of [
      `${r}/aliases/live.json`,
      `${r}/claims/3/x.json`,
      `${r}/reports/3/training-report.svg`,
      'models/plain/versions/1/model.json',
      `datasets/${ROLLOUT_MODEL}/x.csv`,
    ]) {
      expect(get(key), key).toBe(false);
    }
    const list = (prefix: string) => allowed(rollout, { action: 's3:ListBucket', prefix });
    expect(list(`${history}/`)).toBe(true);
    expect(list(`${r}/versions/`)).toBe(true);
    expect(list(pointer)).toBe(true);
    expect(list(`${r}/`)).toBe(false);
    expect(list(`${r}/aliases/`)).toBe(false);
    expect(list('models/plain/versions/')).toBe(false);
  });

  it('states the conditions with the S3 condition keys', () => {
    const bySid = Object.fromEntries(rollout.map((s) => [s.Sid, s]));
    expect(bySid.CreateOnlyOwnAliasObjects?.Condition?.Null).toEqual({ 's3:if-none-match': 'false' });
    expect(bySid.SwapOwnAliasPointer?.Condition?.Null).toEqual({ 's3:if-match': 'false' });
    expect(bySid.AliasHistoryIsAppendOnly).toMatchObject({
      Effect: 'Deny',
      Action: 's3:PutObject',
      Condition: { Null: { 's3:if-none-match': 'true' } },
    });
  });
});
