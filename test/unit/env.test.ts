/**
 * The environment contract (functions/shared/env.ts): its readers name the variable and the
 * problem, an empty value counts as unset, and no other module spells an AIAAS_* name.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../cli/paths.js';
import {
  AIAAS_VARIABLES,
  readChoice,
  readPort,
  readPositiveNumber,
  readString,
  requireString,
} from '../../functions/shared/env.js';
import { ConfigurationError } from '../../functions/shared/errors.js';

describe('the environment readers', () => {
  it('treat an empty value as unset', () => {
    expect(readString({ AIAAS_BUCKET: '' }, 'AIAAS_BUCKET')).toBeUndefined();
    expect(readString({ AIAAS_BUCKET: 'b' }, 'AIAAS_BUCKET')).toBe('b');
    expect(readPositiveNumber({ AIAAS_S3_TIMEOUT_MS: '' }, 'AIAAS_S3_TIMEOUT_MS', 3000)).toBe(3000);
    expect(readChoice({ AIAAS_FAST_PATH: '' }, 'AIAAS_FAST_PATH', ['auto', 'off'], 'auto')).toBe('auto');
    expect(readPort({}, 'AIAAS_S3_PORT', 4569)).toBe(4569);
  });

  it('name the variable and what is wrong with it', () => {
    const error = (read: () => unknown) => {
      try {
        read();
      } catch (caught) {
        expect(caught).toBeInstanceOf(ConfigurationError);
        return (caught as Error).message;
      }
      throw new Error('no error');
    };
    expect(error(() => requireString({ AIAAS_MODEL: '' }, 'AIAAS_MODEL'))).toBe('AIAAS_MODEL is not set');
    for (const raw of ['0', '-1', 'soon', 'Infinity']) {
      expect(error(() => readPositiveNumber({ AIAAS_MAX_ELEMENTS: raw }, 'AIAAS_MAX_ELEMENTS', 1))).toBe(
        `AIAAS_MAX_ELEMENTS must be a positive number, got "${raw}"`,
      );
    }
    expect(
      error(() =>
        readChoice({ AIAAS_RUNTIME: 'gpu' }, 'AIAAS_RUNTIME', ['auto', 'native', 'wasm', 'cpu'], 'auto'),
      ),
    ).toBe('AIAAS_RUNTIME must be auto, native, wasm or cpu, got "gpu"');
    for (const raw of ['-1', '65536', '45.5', 'http']) {
      expect(error(() => readPort({ AIAAS_S3_PORT: raw }, 'AIAAS_S3_PORT', 4569))).toBe(
        `AIAAS_S3_PORT must be a port number (0 to 65535), got "${raw}"`,
      );
    }
    expect(readPort({ AIAAS_S3_PORT: '0' }, 'AIAAS_S3_PORT', 4569)).toBe(0);
    expect(readPositiveNumber({ AIAAS_ALIAS_CHECK_SECONDS: '0.5' }, 'AIAAS_ALIAS_CHECK_SECONDS', 60)).toBe(
      0.5,
    );
  });
});

/** Source files of the shipped code and tools (tests may spell names; they check the contract). */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sources(path);
    return /\.(ts|mjs)$/.test(entry.name) ? [path] : [];
  });
}

describe('the environment contract', () => {
  it('lists each variable once, every constant named as its variable', () => {
    expect(new Set(AIAAS_VARIABLES).size).toBe(AIAAS_VARIABLES.length);
    for (const name of AIAAS_VARIABLES) expect(name).toMatch(/^AIAAS_[A-Z0-9_]+$/);
  });

  it('is the one module that spells an AIAAS_* name as a string', () => {
    const contract = join(ROOT, 'functions/shared/env.ts');
    const offenders = ['functions', 'infra', 'scripts', 'layers', 'bin']
      .flatMap((dir) => sources(join(ROOT, dir)))
      .filter((file) => file !== contract)
      .flatMap((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .map((line, i) => ({ line, where: `${relative(ROOT, file)}:${i + 1}` }))
          .filter(({ line }) => /['"`]AIAAS_/.test(line)),
      )
      .map(({ where, line }) => `${where}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });
});
