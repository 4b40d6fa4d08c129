import { describe, expect, it } from 'vitest';
import { evaluateGate, lowerIsBetter } from '../../functions/shared/training/gate.js';

const gate = { metric: 'val_accuracy', minImprovement: 0, maxRegression: 0.01 };

describe('promotion gate', () => {
  it('passes without a baseline', () => {
    const d = evaluateGate(gate, { val_accuracy: 0.7 });
    expect(d).toMatchObject({ pass: true, candidate: 0.7, baseline: null, delta: null });
    expect(d.reason).toMatch(/no baseline/);
  });

  it('passes an improvement and a tolerated regression, refuses a larger one', () => {
    expect(evaluateGate(gate, { val_accuracy: 0.78 }, { val_accuracy: 0.75 })).toMatchObject({
      pass: true,
      delta: expect.closeTo(0.03, 9),
      improvement: expect.closeTo(0.03, 9),
    });
    expect(evaluateGate(gate, { val_accuracy: 0.745 }, { val_accuracy: 0.75 }).pass).toBe(true);
    const refused = evaluateGate(gate, { val_accuracy: 0.72 }, { val_accuracy: 0.75 });
    expect(refused).toMatchObject({ pass: false, baseline: 0.75, candidate: 0.72 });
    expect(refused.thresholds).toMatchObject({ required: -0.01, lowerIsBetter: false });
    expect(refused.reason).toMatch(/improvement -0\.0300 < required -0\.0100/);
  });

  it('demands minImprovement when no regression is tolerated, ties passing at 0', () => {
    const strict = { metric: 'val_accuracy', minImprovement: 0.02, maxRegression: 0 };
    expect(evaluateGate(strict, { val_accuracy: 0.76 }, { val_accuracy: 0.75 }).pass).toBe(false);
    expect(evaluateGate(strict, { val_accuracy: 0.771 }, { val_accuracy: 0.75 }).pass).toBe(true);
    const tie = { metric: 'val_accuracy', minImprovement: 0, maxRegression: 0 };
    expect(evaluateGate(tie, { val_accuracy: 0.75 }, { val_accuracy: 0.75 }).pass).toBe(true);
  });

  it('treats losses as lower-is-better', () => {
    expect(lowerIsBetter('val_loss')).toBe(true);
    expect(lowerIsBetter('val_accuracy')).toBe(false);
    const lossGate = { metric: 'val_loss', minImprovement: 0.01, maxRegression: 0 };
    const better = evaluateGate(lossGate, { val_loss: 0.45 }, { val_loss: 0.5 });
    expect(better).toMatchObject({
      pass: true,
      delta: expect.closeTo(-0.05, 9),
      improvement: expect.closeTo(0.05, 9),
    });
    expect(evaluateGate(lossGate, { val_loss: 0.495 }, { val_loss: 0.5 }).pass).toBe(false);
  });

  it('never passes a candidate without a finite metric', () => {
    expect(evaluateGate(gate, { val_loss: 0.4 }).pass).toBe(false);
    expect(evaluateGate(gate, { val_accuracy: Number.NaN }, { val_accuracy: 0.5 }).pass).toBe(false);
  });
});
