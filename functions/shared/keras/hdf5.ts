/**
 * Reading an HDF5 file with h5wasm: a damaged or truncated file is a KerasFormatError naming the
 * file and HDF5's reason (h5wasm's own errors say neither), HDF5's stderr is captured, and every
 * weight dataset is checked against a shared byte budget before it is read.
 */

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import h5wasm, { type File as H5File, type Group as H5Group } from 'h5wasm';
import { AIAAS_KERAS_MAX_BYTES } from '../env.js';
import { ValidationError } from '../errors.js';
import { KerasFormatError, KerasWeightsError } from './errors.js';

export type { H5File, H5Group };

/** The stderr stream of the console h5wasm bound its error printer to (a test runner's, say). */
const LOAD_CONSOLE_STDERR = (console as unknown as { _stderr?: NodeJS.WritableStream })._stderr;

/** What the weights read so far may still take (KerasLimits.maxBytes, shared by every dataset read). */
export interface Budget {
  left: number;
  readonly limit: number;
}

/**
 * The bytes are opened from h5wasm's in-memory file system, never from disk: h5wasm's Node build
 * maps HDF5's file system onto the real one (NODERAWFS), and an HDF5 file can name other files
 * (external storage, virtual datasets, external links) that HDF5 would then read and publish as
 * weights. In memory there is nothing else to find. A file HDF5 cannot read is a KerasFormatError naming `what` and HDF5's reason; h5wasm's own
 * errors ("name not defined!") say neither.
 */
export async function withHdf5<T>(bytes: Uint8Array, what: string, read: (file: H5File) => T): Promise<T> {
  const truncated = truncation(bytes);
  if (truncated)
    throw new KerasFormatError(`${what} is not a readable HDF5 file (truncated or damaged): ${truncated}`);
  const { FS } = await h5wasm.ready;
  const path = `/aiaas-${randomUUID()}.h5`;
  FS.writeFile(path, bytes);
  try {
    const damaged = (detail: string, cause?: unknown) =>
      new KerasFormatError(`${what} is not a readable HDF5 file (truncated or damaged): ${detail}`, {
        cause,
      });
    const opened = hdf5Call(() => new h5wasm.File(path, 'r'));
    const file = opened.value;
    // h5wasm does not throw when HDF5 fails to open a file: it hands back a negative id.
    if (!file || opened.error || !(file.file_id >= 0)) {
      throw damaged(
        opened.diagnostics || (opened.error as Error | undefined)?.message || 'HDF5 cannot open it',
        opened.error,
      );
    }
    try {
      const result = hdf5Call(() => read(file));
      if (result.error === undefined) return result.value as T;
      if (result.error instanceof ValidationError) throw result.error;
      // h5wasm throws plain Errors (and Emscripten RuntimeErrors) when HDF5 fails; anything else
      // is a config this converter did not expect, not a damaged file.
      const error = result.error as Error;
      if (result.diagnostics || error?.constructor === Error || error?.name === 'RuntimeError') {
        throw damaged(result.diagnostics || error?.message, error);
      }
      throw new KerasFormatError(`${what} could not be converted: ${error?.message ?? String(error)}`, {
        cause: error,
      });
    } finally {
      hdf5Call(() => file.close());
    }
  } finally {
    FS.unlink(path);
  }
}

/**
 * Runs a synchronous h5wasm call with what HDF5 prints captured instead of written to stderr (the
 * CLI's errors are one line): its error stack and Emscripten's "Aborted(...)" line go through the
 * console.error that h5wasm bound when it loaded, i.e. to that console's stderr stream (and, from
 * a build on the real file system, fs.writeSync(2)). No other JavaScript runs during a synchronous
 * call, so only those lines are taken.
 */
function hdf5Call<T>(call: () => T): { value?: T; error?: unknown; diagnostics: string } {
  const lines: string[] = [];
  const text = (buffer: unknown, offset?: unknown, length?: unknown): string => {
    if (typeof buffer === 'string') return buffer;
    const bytes = buffer as Uint8Array;
    const start = typeof offset === 'number' ? offset : 0;
    const end = typeof length === 'number' ? start + length : bytes.byteLength;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', start, end);
  };
  const writeSync = fs.writeSync;
  const streams = [...new Set([process.stderr, LOAD_CONSOLE_STDERR].filter((s) => s !== undefined))];
  const writes = streams.map((stream) => stream.write);
  fs.writeSync = ((fd: number, buffer: unknown, ...rest: unknown[]) => {
    if (fd !== 2) return (writeSync as (...args: unknown[]) => number)(fd, buffer, ...rest);
    const written = text(buffer, rest[0], rest[1]);
    lines.push(written);
    if (typeof buffer === 'string') return Buffer.byteLength(written);
    const offset = typeof rest[0] === 'number' ? rest[0] : 0;
    return typeof rest[1] === 'number' ? rest[1] : (buffer as Uint8Array).byteLength - offset;
  }) as typeof fs.writeSync;
  for (const stream of streams) {
    stream.write = ((chunk: unknown) => {
      lines.push(text(chunk));
      return true;
    }) as typeof stream.write;
  }
  try {
    return { value: call(), diagnostics: summarize(lines.join('')) };
  } catch (error) {
    return { error, diagnostics: summarize(lines.join('')) };
  } finally {
    fs.writeSync = writeSync;
    streams.forEach((stream, i) => {
      stream.write = writes[i]!;
    });
  }
}

/** HDF5's error stack, as the distinct "minor" reasons it lists (e.g. "file has been truncated"). */
function summarize(stack: string): string {
  const reasons = [...stack.matchAll(/minor: (.+)/g)].map((m) => m[1]!.trim().toLowerCase());
  return [...new Set(reasons)].slice(0, 4).join('; ');
}

/**
 * Why an HDF5 file is cut short, from its superblock's end-of-file address, or undefined when it
 * is not (or the superblock does not say). Checked before HDF5 opens it, which would print a page
 * of errors and leave h5wasm with nothing to say.
 */
function truncation(bytes: Uint8Array): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 9) return `${bytes.length} bytes is shorter than an HDF5 superblock`;
  const version = bytes[8]!;
  let sizeAt: number;
  let eofAt: (offsets: number) => number;
  if (version === 0 || version === 1) {
    sizeAt = 13;
    eofAt = (o) => (version === 0 ? 24 : 28) + 2 * o;
  } else if (version === 2 || version === 3) {
    sizeAt = 9;
    eofAt = (o) => 12 + 2 * o;
  } else {
    return undefined;
  }
  if (bytes.length <= sizeAt) return `${bytes.length} bytes is shorter than an HDF5 superblock`;
  const offsets = bytes[sizeAt]!;
  if (offsets !== 8 && offsets !== 4) return undefined;
  const at = eofAt(offsets);
  if (at + offsets > bytes.length) return `${bytes.length} bytes is shorter than its HDF5 superblock`;
  const base =
    offsets === 8
      ? view.getBigUint64(at - 2 * offsets, true)
      : BigInt(view.getUint32(at - 2 * offsets, true));
  const eof = offsets === 8 ? view.getBigUint64(at, true) : BigInt(view.getUint32(at, true));
  const undefinedAddress = offsets === 8 ? 0xffffffffffffffffn : 0xffffffffn;
  if (eof === undefinedAddress || base === undefinedAddress) return undefined;
  const end = base + eof;
  if (end > BigInt(bytes.length)) return `the file is ${bytes.length} bytes, its HDF5 superblock says ${end}`;
  return undefined;
}

export function readDataset(
  h5: H5File,
  path: string,
  what: string,
  budget: Budget,
): { shape: number[]; data: Float32Array } {
  const dataset = h5.get(path);
  if (!(dataset instanceof h5wasm.Dataset)) throw new KerasWeightsError(`${what}: weight ${path} is missing`);
  const shape = dataset.shape ?? [];
  // A compressed dataset inflates to its declared size when read: check that before reading it.
  const declared = shape.reduce((n, d) => n * d, 1) * Math.max(4, dataset.metadata.size ?? 0);
  if (declared > budget.left) {
    throw new KerasWeightsError(
      `${what}: weight ${path} declares shape [${shape.join(', ')}], which takes the weights over the ${budget.limit} bytes limit (${AIAAS_KERAS_MAX_BYTES})`,
    );
  }
  budget.left -= declared;
  const value = dataset.value;
  if (value instanceof Float32Array) return { shape, data: value };
  // TF.js layers run float32; float64 weights lose nothing that float32 inference would keep.
  if (value instanceof Float64Array) return { shape, data: Float32Array.from(value) };
  if (typeof value === 'number') return { shape, data: Float32Array.of(value) };
  throw new KerasWeightsError(
    `${what}: weight ${path} has dtype ${JSON.stringify(dataset.dtype)}; only float32 and float64 are read`,
  );
}

export function stringAttr(node: H5Group, name: string): string | undefined {
  if (!(name in node.attrs)) return undefined;
  const value = node.get_attribute(name, false);
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return undefined;
}

/** Keras splits a long list attribute into `name0`, `name1`, ... when it exceeds HDF5's 64 KiB limit. */
export function stringListAttr(node: H5Group, name: string): string[] {
  const attrs = node.attrs;
  const parts: unknown[] = [];
  if (name in attrs) parts.push(node.get_attribute(name, true));
  else for (let i = 0; `${name}${i}` in attrs; i++) parts.push(node.get_attribute(`${name}${i}`, true));
  return parts.flatMap((part) => (Array.isArray(part) ? part : [part])).map(String);
}
