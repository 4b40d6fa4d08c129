/**
 * Reads a TF.js model folder from disk (model.json and the weight shards its weightsManifest
 * names) as untrusted input: model folders are downloaded from anywhere.
 *
 * Contract: every file read resolves, symbolic links followed, inside the model's folder (no
 * `..`, no absolute path, no link leading out), is a regular file, and every weight group's shards
 * hold exactly the bytes its weight specs need (dtype, shape and quantization). Anything else is a
 * ValidationError naming the file and the problem, thrown before a byte of an offending file is
 * read.
 */
import { constants } from 'node:fs';
import { type FileHandle, open, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep, win32 } from 'node:path';
import type { io } from '@tensorflow/tfjs-core';
import { IntegrityError, ValidationError } from '../errors.js';
import { artifactsOf, parseModelJson } from './artifacts.js';
import { VALUE_BYTES } from './weights.js';

type Entry = io.WeightsManifestEntry;

function errno(cause: unknown): string {
  return (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * Checks a weightsManifest path's text: relative, no `..` segment, no NUL. Windows forms are
 * refused on every platform, so a folder means the same wherever it is published from.
 */
function checkPathText(path: unknown, where: string, modelFile: string): string {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    throw new ValidationError(`${modelFile}: ${where} is not a file name (${JSON.stringify(path)})`);
  }
  if (isAbsolute(path) || win32.isAbsolute(path) || /^[a-z][a-z0-9+.-]*:/i.test(path)) {
    throw new ValidationError(
      `${modelFile}: ${where} "${path}" is an absolute path; weight paths must be relative to the model folder`,
    );
  }
  if (path.split(/[\\/]/).includes('..')) {
    throw new ValidationError(`${modelFile}: ${where} "${path}" leaves the model folder ("..")`);
  }
  return path;
}

/** A regular file inside `root`, opened without following a last-moment link; its size. */
async function openInside(
  root: string,
  path: string,
  what: string,
): Promise<{ handle: FileHandle; size: number; real: string }> {
  let real: string;
  try {
    real = await realpath(join(root, path));
  } catch (cause) {
    throw new ValidationError(`Cannot read ${what}: ${errno(cause)}`, { cause });
  }
  if (!isInside(root, real)) {
    throw new ValidationError(
      `${what} resolves outside the model folder ${root} (through a symbolic link): refused`,
    );
  }
  let handle: FileHandle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (cause) {
    throw new ValidationError(`Cannot read ${what}: ${errno(cause)}`, { cause });
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new ValidationError(`${what} is not a regular file`);
  }
  return { handle, size: stat.size, real };
}

async function readExactly(handle: FileHandle, size: number, what: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    const { bytesRead } = await handle.read(bytes, done, size - done, done);
    if (bytesRead === 0) throw new ValidationError(`${what} shrank while it was read`);
    done += bytesRead;
  }
  return bytes;
}

/** Checks one weight spec's fields; returns its byte length, or undefined for strings (length is in the data). */
function specBytes(spec: unknown, where: string, modelFile: string): number | undefined {
  const s = spec as Partial<Entry> | null;
  if (!s || typeof s !== 'object' || typeof s.name !== 'string' || !Array.isArray(s.shape)) {
    throw new ValidationError(`${modelFile}: ${where} is not a weight spec (needs name, shape, dtype)`);
  }
  if (!s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ValidationError(
      `${modelFile}: ${where} (${s.name}) has shape ${JSON.stringify(s.shape)}; dimensions must be whole numbers ≥ 0`,
    );
  }
  const dtype = s.quantization ? s.quantization.dtype : s.dtype;
  if (dtype === 'string' && !s.quantization) return undefined;
  const per = typeof dtype === 'string' ? VALUE_BYTES[dtype] : undefined;
  if (per === undefined) {
    throw new ValidationError(
      `${modelFile}: ${where} (${s.name}) has unknown dtype ${JSON.stringify(dtype)}`,
    );
  }
  const count = s.shape.reduce((n: number, d: number) => n * d, 1);
  return count * per;
}

/** Bytes a group's string weights take, walking their length prefixes; undefined when the data is short. */
function stringGroupBytes(specs: readonly Entry[], data: Uint8Array): number | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  for (const spec of specs) {
    const fixed = specBytes(spec, '', '');
    if (fixed !== undefined) {
      offset += fixed;
      continue;
    }
    const count = spec.shape.reduce((n, d) => n * d, 1);
    for (let i = 0; i < count; i++) {
      if (offset + 4 > data.byteLength) return undefined;
      offset += 4 + view.getUint32(offset, true);
    }
  }
  return offset;
}

interface Shard {
  readonly path: string;
  readonly handle: FileHandle;
  readonly size: number;
}

/** The refusal for a group whose shards do not total what its weights need, naming the file at fault. */
function lengthError(
  shards: readonly Shard[],
  need: number,
  group: number,
  modelFile: string,
): ValidationError {
  if (shards.length === 0) {
    return new ValidationError(
      `${modelFile}: weightsManifest[${group}] lists weights that need ${need} bytes, but names no shard holding them`,
    );
  }
  const total = shards.reduce((n, s) => n + s.size, 0);
  // Shards are the group's bytes cut in order: the first one that reaches past the need (or the
  // last, when they fall short) is the one that does not fit.
  let before = 0;
  let at = shards.length - 1;
  for (let i = 0; i < shards.length; i++) {
    if (before + shards[i]!.size > need) {
      at = i;
      break;
    }
    before += shards[i]!.size;
  }
  const shard = shards[at]!;
  const expected = Math.max(0, need - shards.slice(0, at).reduce((n, s) => n + s.size, 0));
  const whole =
    shards.length > 1
      ? ` (weight group ${group + 1}: ${total} bytes in ${shards.length} shards, needs ${need})`
      : '';
  return new ValidationError(
    `weight shard ${shard.path} is ${shard.size} bytes, but the weights ${modelFile} lists need ${at === shards.length - 1 ? expected : `at most ${expected}`} bytes in it${whole}`,
  );
}

/**
 * Reads a TF.js model from disk (a folder holding model.json, or the model.json path) with its
 * shards, under the rules in this module's contract.
 */
export async function readModelFromDisk(path: string): Promise<io.ModelArtifacts> {
  const given = path.endsWith('.json') ? path : join(path, 'model.json');
  let root: string;
  try {
    root = await realpath(dirname(given));
  } catch (cause) {
    throw new ValidationError(`Cannot read ${given}: ${errno(cause)}`, { cause });
  }
  const opened: FileHandle[] = [];
  try {
    const model = await openInside(root, basename(given), given);
    opened.push(model.handle);
    const modelBytes = await readExactly(model.handle, model.size, given);
    let json: io.ModelJSON;
    try {
      json = parseModelJson(modelBytes, given);
    } catch (cause) {
      // The same words the registry uses for a stored model.json, as the caller's mistake here.
      if (cause instanceof IntegrityError) throw new ValidationError(cause.message, { cause });
      throw cause;
    }

    // Check every path and spec before opening any shard.
    const groups = json.weightsManifest.map((group, g) => {
      const where = `weightsManifest[${g}]`;
      if (
        !group ||
        typeof group !== 'object' ||
        !Array.isArray(group.paths) ||
        !Array.isArray(group.weights)
      ) {
        throw new ValidationError(`${given}: ${where} needs "paths" and "weights" lists`);
      }
      const paths = group.paths.map((p, i) => checkPathText(p, `${where}.paths[${i}]`, given));
      const sizes = group.weights.map((w, i) => specBytes(w, `${where}.weights[${i}]`, given));
      return { paths, weights: group.weights, sizes };
    });

    const buffers: Uint8Array[] = [];
    // A file listed twice would be read twice: tfjs never writes that, and it multiplies memory.
    const seen = new Set<string>();
    for (const [g, group] of groups.entries()) {
      const shards: Shard[] = [];
      for (const p of group.paths) {
        const shard = await openInside(root, p, `weight shard ${p} named in ${given}`);
        opened.push(shard.handle);
        if (seen.has(shard.real)) throw new ValidationError(`weight shard ${p} is listed twice in ${given}`);
        seen.add(shard.real);
        shards.push({ path: p, handle: shard.handle, size: shard.size });
      }
      const total = shards.reduce((n, s) => n + s.size, 0);
      const fixed = group.sizes.every((n) => n !== undefined);
      if (fixed) {
        const need = group.sizes.reduce((n: number, b) => n + b!, 0);
        if (total !== need) throw lengthError(shards, need, g, given);
      }
      const bytes = await Promise.all(
        shards.map((s) => readExactly(s.handle, s.size, `weight shard ${s.path}`)),
      );
      if (!fixed) {
        const joined = bytes.length === 1 ? bytes[0]! : concat(bytes, total);
        const need = stringGroupBytes(group.weights, joined);
        if (need === undefined) {
          throw new ValidationError(
            `weight shard ${shards.at(-1)!.path} ends inside the string weights ${given} lists (${total} bytes in weight group ${g + 1})`,
          );
        }
        if (need !== total) throw lengthError(shards, need, g, given);
      }
      buffers.push(...bytes);
    }
    const weightData = buffers.map((b) => b.buffer as ArrayBuffer);
    return {
      ...artifactsOf(json),
      ...(weightData.length > 0 ? { weightData: weightData.length === 1 ? weightData[0] : weightData } : {}),
    };
  } finally {
    // Read-only handles: a failed close loses nothing, and must not hide the read's outcome.
    await Promise.all(opened.map((h) => h.close().catch(() => undefined)));
  }
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}
