/** fast-check arbitraries shared by property tests. */
import fc from 'fast-check';

/** Strings shaped like names a client or the CLI might send: valid ones, and every trap we know. */
export const nameLike = fc.oneof(
  fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,62}$/),
  fc.string({ maxLength: 70 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom(
    '',
    '.',
    '..',
    '../other',
    'a/../b',
    'a/b',
    '/a',
    'a/',
    'a\\b',
    '%2F',
    'a%2Fb',
    'a\u0000',
    'a\n',
    '\na',
    ' a',
    'A',
    '-a',
    '_a',
    'a'.repeat(63),
    'a'.repeat(64),
    'ａ',
    'a\u200b',
    'models',
    'datasets',
    'versions',
  ),
);
