import { type App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
// cdk-nag's own flattening of CloudFormation references into finding ids (`Resource::<...>`).
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag (v3) AwsSolutions checks on every synth: any finding not acknowledged beside its
 * construct fails synthesis (the CLI prints the report, `cdk.out/policy-validation-report.json`).
 */
export function enableNag(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
}

/** A cdk-nag acknowledgement: the rule id (or `Rule[finding]`) and why it does not apply. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * Acknowledges AwsSolutions-IAM5 for exactly these wildcard resources (an object prefix such as
 * `arn:...:bucket/models/<name>/*`), computing the finding id the way cdk-nag does, so a wildcard
 * added later elsewhere still fails synth. Resources must not contain cross-stack references.
 */
export function acknowledgeWildcardResources(
  scope: IConstruct,
  resources: readonly string[],
  reason: string,
): void {
  const stack = Stack.of(scope);
  for (const resource of resources) {
    const flat = flattenCfnReference(stack.resolve(resource));
    if (!flat.includes('*')) continue;
    acknowledge(scope, `AwsSolutions-IAM5[Resource::${flat}]`, reason);
  }
}
