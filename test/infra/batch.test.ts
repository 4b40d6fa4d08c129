import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { batchStateMachineName } from '../../functions/shared/batch/events.js';
import { RegistryUnavailableError } from '../../functions/shared/errors.js';
import { keys } from '../../functions/shared/registry/layout.js';
import {
  type AslDefinition,
  definitionFromTemplate,
  renderBatchDefinition,
} from '../../infra/batch-definition.js';
import { BATCH_STATES, MAX_BATCH_INPUT_BYTES, SCORE_RETRY } from '../../infra/constructs/batch-job.js';
import { defaultBatchSettings } from '../../scripts/local/batch/definition.js';
import { evaluateExpression } from '../../scripts/local/batch/json-path.js';
import { buildApp, exampleManifest, type SynthResult, tempDir } from './helpers.js';

/** asl-validator (CommonJS, no types): `(definition) => {isValid, errorsText}`. */
const aslValidator = createRequire(import.meta.url)('asl-validator') as (definition: unknown) => {
  isValid: boolean;
  errorsText: (separator?: string) => string;
};

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;
type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

const SETTINGS = { maxConcurrency: 7, rowsPerBatch: 250, toleratedFailurePercent: 5 };

function withBatch(batch: unknown): unknown {
  const manifest = exampleManifest() as { models: Record<string, unknown>[] };
  manifest.models[0]!.batch = batch;
  return manifest;
}

function modelTemplate(result: SynthResult) {
  const json = Template.fromStack(result.models.get('diabetes')!).toJSON() as { Resources: Resources };
  return json;
}

/** Logical id of the one resource of `type` whose id starts with `prefix`. */
function idOf(resources: Resources, type: string, prefix: string): string {
  const ids = Object.keys(resources).filter((id) => resources[id]!.Type === type && id.startsWith(prefix));
  expect(ids, `${type} ${prefix}*`).toHaveLength(1);
  return ids[0]!;
}

const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

/** Every statement of every identity policy attached to role `roleId`. */
function statementsOf(resources: Resources, roleId: string): Statement[] {
  return Object.values(resources)
    .filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' &&
        (r.Properties.Roles as unknown[]).some(
          (role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId }),
        ),
    )
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

/** The registry object ARN of `prefix*` as the model stack writes it (the bucket is imported by name). */
function isObjectArnUnder(resource: unknown, prefix: string): boolean {
  const text = JSON.stringify(resource);
  return text.includes(':s3:::') && text.endsWith(`/${prefix}*"]]}`);
}

describe('the batch state machine (manifest "batch")', () => {
  const result = buildApp(withBatch(SETTINGS));
  const template = modelTemplate(result);
  const resources = template.Resources;
  const machineId = 'BatchStateMachine';
  const machine = resources[machineId]!;
  const aliasId = idOf(resources, 'AWS::Lambda::Alias', 'InferenceAlias');
  const assembleId = idOf(resources, 'AWS::Lambda::Function', 'BatchAssembleFunction');
  const assembleAliasId = idOf(resources, 'AWS::Lambda::Alias', 'BatchAssembleAlias');
  const refs = {
    [aliasId]: 'arn:aws:lambda:us-east-1:000000000000:function:scorer:live',
    [assembleAliasId]: 'arn:aws:lambda:us-east-1:000000000000:function:assemble:live',
  };
  const definition = definitionFromTemplate(template, machineId, refs);
  const csv = definition.States[BATCH_STATES.csv]!;
  const jsonl = definition.States[BATCH_STATES.jsonl]!;

  it('is named so the CLI finds it, and its ARN is a stack output', () => {
    expect(machine.Properties.StateMachineName).toBe(batchStateMachineName('aiaas', 'diabetes'));
    expect(machine.Properties.StateMachineType).toBe('STANDARD');
    const outputs = (
      Template.fromStack(result.models.get('diabetes')!).toJSON() as { Outputs: Record<string, unknown> }
    ).Outputs;
    expect(outputs.BatchStateMachineArn).toEqual(expect.objectContaining({ Value: { Ref: machineId } }));
  });

  it('passes asl-validator with no errors', () => {
    // A copy: asl-validator fills in defaults (QueryLanguage) on what it is given.
    const { isValid, errorsText } = aslValidator(structuredClone(definition));
    expect(errorsText('\n')).toBe('');
    expect(isValid).toBe(true);
  });

  it('is the definition the local executor renders offline (same states, same settings)', () => {
    const offline = renderBatchDefinition({
      model: 'diabetes',
      settings: SETTINGS,
      scorerTimeoutSeconds: 30,
      bucket: 'BUCKET',
    });
    const normalize = (d: AslDefinition, scorer: string, assembler: string, bucket: string) =>
      JSON.parse(
        JSON.stringify(d)
          .replaceAll(scorer, 'SCORER')
          .replaceAll(assembler, 'ASSEMBLER')
          .replaceAll(`"Bucket":${JSON.stringify(bucket)}`, '"Bucket":"BUCKET"'),
      ) as unknown;
    const bucketInTemplate = (csv.ItemReader as { Parameters: { Bucket: string } }).Parameters.Bucket;
    expect(normalize(offline.definition, offline.scorerArn, offline.assemblerArn, 'BUCKET')).toEqual(
      normalize(definition, refs[aliasId]!, refs[assembleAliasId]!, bucketInTemplate),
    );
  });

  it('reads the input named by the execution input: CSV with its header row, or JSON Lines', () => {
    expect(csv.ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'CSV', CSVHeaderLocation: 'FIRST_ROW' },
      Parameters: { Bucket: expect.any(String), 'Key.$': '$.inputKey' },
    });
    expect(jsonl.ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSONL' },
      Parameters: { Bucket: expect.any(String), 'Key.$': '$.inputKey' },
    });
    expect(definition.States[BATCH_STATES.format]).toEqual(
      expect.objectContaining({
        Choices: [
          { Variable: '$.format', StringEquals: 'csv', Next: BATCH_STATES.csv },
          { Variable: '$.format', StringEquals: 'jsonl', Next: BATCH_STATES.jsonl },
        ],
        Default: BATCH_STATES.badFormat,
      }),
    );
  });

  it("batches rows with their index and the job's pinned version, as the manifest says", () => {
    for (const map of [csv, jsonl]) {
      expect(map.ItemSelector).toEqual({ 'index.$': '$$.Map.Item.Index', 'row.$': '$$.Map.Item.Value' });
      expect(map.ItemBatcher).toEqual({
        MaxItemsPerBatch: SETTINGS.rowsPerBatch,
        MaxInputBytesPerBatch: MAX_BATCH_INPUT_BYTES,
        BatchInput: {
          'model.$': '$.model',
          'version.$': '$.version',
          'job.$': '$.job',
          'format.$': '$.format',
          'features.$': '$.features',
        },
      });
      expect(map.MaxConcurrency).toBe(SETTINGS.maxConcurrency);
      expect(map.ToleratedFailurePercentage).toBe(SETTINGS.toleratedFailurePercent);
      const processor = map.ItemProcessor as {
        ProcessorConfig: unknown;
        States: Record<string, Record<string, unknown>>;
      };
      expect(processor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' });
      const [task] = Object.values(processor.States);
      expect(task!.Resource).toBe(refs[aliasId]);
      expect(task!.Retry).toEqual([
        expect.objectContaining({
          ErrorEquals: [...SCORE_RETRY.errors],
          MaxAttempts: SCORE_RETRY.maxAttempts,
        }),
      ]);
    }
    // The function's own transient error is retried by its name.
    expect(SCORE_RETRY.errors).toContain(new RegistryUnavailableError('x').name);
  });

  it("writes the children's results under the job's own prefix, and always reaches the final step", () => {
    for (const map of [csv, jsonl]) {
      const writer = map.ResultWriter as {
        Resource: string;
        Parameters: Record<string, string>;
        WriterConfig?: unknown;
      };
      expect(writer.Resource).toBe('arn:aws:states:::s3:putObject');
      // A succeeded batch is written as its output alone (not its rows again), a line each.
      expect(writer.WriterConfig).toEqual({ Transformation: 'COMPACT', OutputType: 'JSONL' });
      const prefix = evaluateExpression(writer.Parameters['Prefix.$']!, { job: 'job-1' }, {});
      expect(prefix).toBe(keys.batchResults('diabetes', 'job-1'));
      expect(map.ResultPath).toBe('$.map');
      expect(map.Next).toBe(BATCH_STATES.assemble);
      expect(map.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.map', Next: BATCH_STATES.assemble },
      ]);
    }
    expect(definition.States[BATCH_STATES.assemble]).toEqual(
      expect.objectContaining({
        Resource: refs[assembleAliasId],
        Parameters: {
          'job.$': '$$.Execution.Input',
          'startedAt.$': '$$.Execution.StartTime',
          'map.$': '$.map',
        },
        ResultPath: '$.summary',
      }),
    );
  });

  it('lets the state machine invoke only the model function and the assemble function', () => {
    const roleId = (machine.Properties.RoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
    const statements = statementsOf(resources, roleId);
    const invoke = statements.filter((s) => actions(s).some((a) => a.startsWith('lambda:')));
    expect(new Set(invoke.flatMap(actions))).toEqual(new Set(['lambda:InvokeFunction']));
    const targets = invoke.flatMap(resourcesOf).map((r) => JSON.stringify(r));
    expect(targets.sort()).toEqual(
      [JSON.stringify({ Ref: aliasId }), JSON.stringify({ Ref: assembleAliasId })].sort(),
    );
  });

  it('lets the state machine use only batch/<model>/ of the registry, and nothing else of S3', () => {
    const roleId = (machine.Properties.RoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
    const s3 = statementsOf(resources, roleId).filter((s) => actions(s).some((a) => a.startsWith('s3:')));
    expect(s3.length).toBeGreaterThan(0);
    for (const statement of s3) {
      expect(statement.Effect).toBe('Allow');
      for (const resource of resourcesOf(statement))
        expect(isObjectArnUnder(resource, 'batch/diabetes/')).toBe(true);
    }
    expect(new Set(s3.flatMap(actions))).toEqual(
      new Set(['s3:GetObject', 's3:PutObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload']),
    );
    // Step Functions actions only on this state machine and its executions.
    const states = statementsOf(resources, roleId).filter((s) =>
      actions(s).some((a) => a.startsWith('states:')),
    );
    for (const resource of states.flatMap(resourcesOf)) {
      expect(JSON.stringify(resource)).toMatch(/"Ref":"BatchStateMachine"|stateMachine:|execution:/);
    }
  });

  it('lets the assemble function use only batch/<model>/ of the registry', () => {
    const fn = resources[assembleId]!;
    const roleId = (fn.Properties.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
    const s3 = statementsOf(resources, roleId).filter((s) => actions(s).some((a) => a.startsWith('s3:')));
    for (const statement of s3) {
      if (actions(statement).includes('s3:ListBucket')) {
        expect(statement.Condition).toEqual(
          expect.objectContaining({ StringLike: { 's3:prefix': ['batch/diabetes/*'] } }),
        );
      } else {
        for (const resource of resourcesOf(statement))
          expect(isObjectArnUnder(resource, 'batch/diabetes/')).toBe(true);
      }
    }
    expect(new Set(s3.flatMap(actions))).toEqual(
      new Set(['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:ListBucket']),
    );
  });

  it('logs every event but no row data, traces with X-Ray, and keeps cdk-nag clean', () => {
    expect(machine.Properties.LoggingConfiguration).toEqual(
      expect.objectContaining({ Level: 'ALL', IncludeExecutionData: false }),
    );
    expect(machine.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(() => result.app.synth()).not.toThrow();
    const report = new AwsSolutionsChecks().validateScope(result.app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
  });

  it('passes cfn-lint with no errors', () => {
    const lint = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
    if (lint.error) {
      // cfn-lint is a Python tool installed on these machines, not an npm dependency.
      console.warn(
        `batch: cfn-lint is not installed here (${lint.error.message}); the template is not linted`,
      );
      return;
    }
    const file = join(tempDir('aiaas-batch-lint-'), 'model.template.json');
    writeFileSync(file, JSON.stringify(template));
    const run = spawnSync('cfn-lint', ['--format', 'parseable', file], { encoding: 'utf8' });
    const errors = run.stdout.split('\n').filter((line) => /:E\d{4}:/.test(line));
    expect(errors).toEqual([]);
    // cfn-lint's exit code has bit 2 for errors (4: warnings, 8: informational).
    expect((run.status ?? 2) & 2).toBe(0);
  }, 120_000);
});

describe('the batch state machine, opt-in', () => {
  it('is not deployed for a model without "batch"', () => {
    const resources = modelTemplate(buildApp(exampleManifest())).Resources;
    expect(Object.values(resources).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine')).toEqual([]);
  });

  it('takes the manifest defaults from "batch": {} (no failed batch tolerated)', () => {
    expect(defaultBatchSettings()).toEqual({
      maxConcurrency: 10,
      rowsPerBatch: 500,
      toleratedFailurePercent: 0,
    });
    const template = modelTemplate(buildApp(withBatch({})));
    const aliases = Object.keys(template.Resources).filter(
      (id) => template.Resources[id]!.Type === 'AWS::Lambda::Alias',
    );
    const definition = definitionFromTemplate(
      template,
      'BatchStateMachine',
      Object.fromEntries(
        aliases.map((id) => [id, `arn:aws:lambda:us-east-1:000000000000:function:${id}:live`]),
      ),
    );
    const csv = definition.States[BATCH_STATES.csv]!;
    expect(csv.MaxConcurrency).toBe(10);
    expect((csv.ItemBatcher as { MaxItemsPerBatch: number }).MaxItemsPerBatch).toBe(500);
    expect(csv.ToleratedFailurePercentage).toBeUndefined();
  });

  it('runs children as Standard workflows when a batch could outlast an Express one', () => {
    const slow = renderBatchDefinition({
      model: 'slow',
      settings: { maxConcurrency: 1, rowsPerBatch: 1, toleratedFailurePercent: 0 },
      scorerTimeoutSeconds: 120,
      bucket: 'bucket-b',
    }).definition;
    const processor = slow.States[BATCH_STATES.csv]!.ItemProcessor as { ProcessorConfig: unknown };
    expect(processor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
  });

  it('refuses settings out of range, naming the field', () => {
    expect(() => buildApp(withBatch({ maxConcurrency: 0 }))).toThrow(
      /model "diabetes": field "batch.maxConcurrency"/,
    );
    expect(() => buildApp(withBatch({ rowsPerBatch: 20_000 }))).toThrow(/field "batch.rowsPerBatch"/);
    expect(() => buildApp(withBatch({ toleratedFailurePercent: 101 }))).toThrow(
      /field "batch.toleratedFailurePercent"/,
    );
    expect(() => buildApp(withBatch({ maxItems: 3 }))).toThrow(/field "batch"/);
  });
});
