import { describe, expect, it } from 'vitest';
import * as errors from '../../functions/shared/errors.js';
import * as keras from '../../functions/shared/keras/convert.js';

// The bundles are minified, so an error's name must be spelled out in its class: one that forgets
// would log under its parent's name. (Here the sources are not minified: the class name is the truth.)
type ErrorClass = new (...args: string[]) => Error;
const classes = ([...Object.values(errors), ...Object.values(keras)] as unknown[]).filter(
  (value): value is ErrorClass => typeof value === 'function' && value.prototype instanceof Error,
);

describe('error classes', () => {
  it('are all found', () => {
    expect(classes.length).toBeGreaterThanOrEqual(14);
  });

  it.each(classes.map((c) => [c.name, c] as const))('%s carries its own name', (name, ErrorClass) => {
    const error = new ErrorClass('a', 'b', 'c');
    expect(error.name).toBe(name);
    expect(error).toBeInstanceOf(errors.AiaasError);
  });
});
