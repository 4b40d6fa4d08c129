import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { fleetManifest } from '../../infra/fleet.js';
import { buildApp } from './helpers.js';

// Synth time of large fleets is measured by the bench (scripts/bench), not here.
describe('a 50-model fleet', () => {
  it('synthesizes with cdk-nag clean, one stack per model', () => {
    const result = buildApp(fleetManifest(50, { retrainEvery: 5, nativeEvery: 10 }));
    const assembly = result.app.synth();
    expect(result.models.size).toBe(50);
    expect(assembly.stacks).toHaveLength(51);
    const native = Template.fromStack(result.models.get('model-010')!);
    native.hasResourceProperties('AWS::Lambda::Function', { PackageType: 'Image' });
    native.resourceCountIs('AWS::Scheduler::Schedule', 1);
    const wasm = Template.fromStack(result.models.get('model-049')!);
    wasm.resourceCountIs('AWS::Lambda::Url', 1);
    wasm.resourceCountIs('AWS::Scheduler::Schedule', 0);
  }, 240_000);
});
