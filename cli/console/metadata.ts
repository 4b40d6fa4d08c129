/**
 * Version metadata as the console shows it. The registry checks only a version's identity and
 * files (describesVersion); its metrics, signature, source, training and dates are whatever their
 * writer put there. The pages read those fields as typed, so `shownVersion` brings each to that
 * shape — numbers-only metrics, a signature of well-formed tensor specs, objects where objects
 * are read — and names in `unreadable` what it had to leave out, for the page to say. One damaged
 * version then costs its own details, not the model's page.
 */
import type { Signature, TensorSpec, VersionMetadata } from '../../functions/shared/registry/types.js';

export type ShownVersion = VersionMetadata & { readonly unreadable: readonly string[] };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function isTensorSpec(v: unknown): v is TensorSpec {
  return (
    isObject(v) &&
    typeof v.name === 'string' &&
    typeof v.dtype === 'string' &&
    Array.isArray(v.shape) &&
    v.shape.every((d) => d === null || typeof d === 'number')
  );
}

function isSignature(v: unknown): v is Signature {
  return (
    isObject(v) &&
    Array.isArray(v.inputs) &&
    Array.isArray(v.outputs) &&
    v.inputs.every(isTensorSpec) &&
    v.outputs.every(isTensorSpec)
  );
}

export function shownVersion(meta: VersionMetadata): ShownVersion {
  const unreadable: string[] = [];
  const raw = meta as unknown as Record<string, unknown>;
  const field = <T>(name: string, ok: (v: unknown) => boolean, fallback: T, optional = false): T => {
    const value = raw[name];
    if (ok(value) || (optional && value === undefined)) return value as T;
    unreadable.push(name);
    return fallback;
  };
  const metrics = field<Record<string, unknown>>('metrics', isObject, {});
  const numbers = Object.fromEntries(Object.entries(metrics).filter(([, v]) => typeof v === 'number'));
  const training = field<Record<string, unknown> | undefined>('training', isObject, undefined, true);
  const report = field<Record<string, string> | undefined>('report', isObject, undefined, true);
  return {
    ...meta,
    createdAt: field('createdAt', (v) => typeof v === 'string', ''),
    createdBy: field('createdBy', (v) => typeof v === 'string', ''),
    signature: field<Signature>('signature', isSignature, { inputs: [], outputs: [] }),
    metrics: numbers as Record<string, number>,
    source: field('source', isObject, {} as unknown as VersionMetadata['source']),
    parent: field(
      'parent',
      (v) => v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v > 0),
      null,
    ),
    ...(training ? { training } : {}),
    ...(report ? { report } : {}),
    unreadable,
  };
}
