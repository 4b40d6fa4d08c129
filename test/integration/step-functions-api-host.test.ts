/**
 * The local Step Functions API (`npm start`, scripts/local/step-functions-api.ts) answers only
 * requests that name it in Host, as the other loopback listeners do (cli/loopback-host.ts): a page
 * of another site whose name resolves to 127.0.0.1 (DNS rebinding) cannot start or read batch jobs.
 * Real HTTP on loopback, with the SDK's client for the allowed case; no job is run.
 */
import { ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { type StepFunctionsApi, startStepFunctionsApi } from '../../scripts/local/step-functions-api.js';
import { rawRequest } from '../support/raw-request.js';

let api: StepFunctionsApi;
let port: number;
let runs = 0;

beforeAll(async () => {
  api = await startStepFunctionsApi({
    s3: { endpoint: 'http://127.0.0.1:1', bucket: 'b' },
    registry: { listModels: async () => [] } as unknown as ModelRegistry,
    manifest: { app: 'aiaas', models: [] },
    run: async () => {
      runs++;
      throw new Error('no job runs in this test');
    },
  });
  port = Number(new URL(api.url).port);
});
afterAll(async () => {
  await api?.close();
});

function call(host: string, target: string, body: string) {
  return rawRequest(
    port,
    'POST',
    '/',
    { host, 'x-amz-target': target, 'content-type': 'application/x-amz-json-1.0' },
    body,
  );
}

describe('the local Step Functions API: the Host guard', () => {
  it('refuses a foreign Host with 403, naming it, before any operation runs', async () => {
    const start = JSON.stringify({
      stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:aiaas-batch-m',
      input: '{}',
    });
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1:${port + 1}`]) {
      const answer = await call(host, 'AWSStepFunctions.StartExecution', start);
      expect(answer.status).toBe(403);
      const body = JSON.parse(answer.text) as { __type: string; message: string };
      expect(body.__type).toBe('AccessDeniedException');
      expect(body.message).toBe(
        `The local Step Functions API answers only to 127.0.0.1:${port} or localhost:${port}, not Host ${JSON.stringify(host)}`,
      );
    }
    expect(runs).toBe(0);
  });

  it('answers the SDK, which names the endpoint it was given', async () => {
    for (const name of ['127.0.0.1', 'localhost']) {
      const client = new SFNClient({
        endpoint: `http://${name}:${port}`,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      const listed = await client.send(new ListStateMachinesCommand({}));
      expect(listed.stateMachines).toEqual([]);
      client.destroy();
    }
  });
});
