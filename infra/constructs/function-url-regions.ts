/**
 * Regions where CloudFormation has no `AWS::Lambda::Url`, so a model stack (its function URL) cannot
 * deploy there. `assertFunctionUrlRegion` fails synthesis for a stack whose region is known (an
 * explicit `env`) and listed; an environment-agnostic stack (region a token) passes, and
 * CloudFormation itself then refuses the template in such a region ("Unrecognized resource types").
 */
import { Stack, Token } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Source: cfn-lint 1.51.0's per-region resource schemas (`cfnlint/data/schemas/providers/<region>.py`),
 * the regions whose list lacks `AWS::Lambda::Url`; read 2026-12-06. Regions gain resource types
 * over time: refresh this from a newer cfn-lint when one of them adds function URLs.
 */
export const REGIONS_WITHOUT_FUNCTION_URLS: readonly string[] = [
  'ap-east-2',
  'ap-south-2',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-southeast-6',
  'ap-southeast-7',
  'ca-west-1',
  'cn-northwest-1',
  'eu-central-2',
  'eu-south-2',
  'il-central-1',
  'me-central-1',
  'mx-central-1',
  'us-gov-east-1',
  'us-gov-west-1',
];

/** Throws when `scope`'s stack is pinned to a region that has no function URLs. */
export function assertFunctionUrlRegion(scope: IConstruct, what: string): void {
  const { region } = Stack.of(scope);
  if (Token.isUnresolved(region) || !REGIONS_WITHOUT_FUNCTION_URLS.includes(region)) return;
  throw new Error(
    `${what}: region ${region} has no Lambda function URLs (AWS::Lambda::Url), which aiaas serves every model through; deploy to a region that has them`,
  );
}
