/**
 * Reads chosen entries of a zip archive (a Keras 3 `.keras` file) as untrusted input: a zip bomb
 * must neither take the process's memory nor slip through as an entry nobody reads.
 *
 * Contract: the central directory is read first and every entry's declared sizes are checked
 * before anything is inflated: the entries asked for against their own caps, every entry of the
 * archive against the total cap and, when it declares more than RATIO_FLOOR_BYTES, against the
 * compression-ratio cap. Only the entries asked for are inflated, each into a buffer of its
 * declared size, fed to fflate's streaming Inflate in small chunks; an entry that inflates past its
 * declared size is refused at once. So reading takes at most the declared sizes of the entries
 * asked for (each ≤ its cap) plus one chunk's output, whatever the archive holds. Refusals are
 * ArchiveError, naming the archive, the entry and the limit.
 */
import { Inflate } from 'fflate';
import { ValidationError } from '../errors.js';

/** The archive is not a readable zip, or it breaks a limit. */
export class ArchiveError extends ValidationError {
  override readonly name: string = 'ArchiveError';
}

export interface ZipLimits {
  /** Sum of every entry's declared inflated size. */
  readonly maxTotalBytes: number;
  /** Largest declared inflated : compressed ratio of an entry over RATIO_FLOOR_BYTES. */
  readonly maxRatio: number;
  /** Where the limits are set, for the messages (e.g. an environment variable). */
  readonly setting?: string;
}

/** Entries smaller than this are never refused for their ratio: they cannot hurt, and JSON compresses well. */
export const RATIO_FLOOR_BYTES = 1024 * 1024;

/** Compressed bytes handed to the inflater at once: bounds one step's output to ~1,032× this. */
const INFLATE_CHUNK = 16 * 1024;

interface Entry {
  readonly name: string;
  readonly flags: number;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX32 = 0xffffffff;

const utf8 = new TextDecoder('utf-8', { fatal: false });

function u64(view: DataView, offset: number, what: string): number {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ArchiveError(`${what}: a zip64 size or offset is out of range`);
  return Number(value);
}

/** An entry name as it may appear in a one-line message: quoted when it holds anything unusual. */
function label(name: string): string {
  return /^[\w./ +-]{1,200}$/.test(name) ? name : JSON.stringify(name.slice(0, 200));
}

function human(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

/** The archive's entries, from its central directory (local headers are only used to find the data). */
export function listZip(bytes: Uint8Array, what: string): Entry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const damaged = (why: string) =>
    new ArchiveError(`${what} is a zip file that cannot be read (truncated or damaged): ${why}`);
  let eocd = -1;
  for (let at = bytes.length - 22; at >= 0 && at >= bytes.length - 22 - 0xffff; at--) {
    if (view.getUint32(at, true) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw damaged('no end of central directory record');
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if (eocd >= 20 && view.getUint32(eocd - 20, true) === ZIP64_LOCATOR) {
    const at = u64(view, eocd - 12, what);
    if (at + 56 > bytes.length || view.getUint32(at, true) !== ZIP64_EOCD) throw damaged('bad zip64 record');
    count = u64(view, at + 32, what);
    cdSize = u64(view, at + 40, what);
    cdOffset = u64(view, at + 48, what);
  }
  if (cdOffset + cdSize > bytes.length || count > cdSize / 46)
    throw damaged('the central directory lies outside the file');
  const entries: Entry[] = [];
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > cdOffset + cdSize || view.getUint32(at, true) !== CENTRAL)
      throw damaged(`entry ${i + 1} of ${count} is missing`);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const end = at + 46 + nameLength + extraLength + commentLength;
    if (end > cdOffset + cdSize) throw damaged(`entry ${i + 1} of ${count} is cut short`);
    const name = utf8.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    let size = view.getUint32(at + 24, true);
    let compressedSize = view.getUint32(at + 20, true);
    let localOffset = view.getUint32(at + 42, true);
    // Zip64: the fields that overflowed 32 bits are in extra field 0x0001, in this order.
    for (let x = at + 46 + nameLength; x + 4 <= at + 46 + nameLength + extraLength; ) {
      const id = view.getUint16(x, true);
      const length = view.getUint16(x + 2, true);
      if (id === 0x0001) {
        let f = x + 4;
        const next = () => {
          if (f + 8 > x + 4 + length) throw damaged(`entry ${label(name)}'s zip64 field is cut short`);
          const value = u64(view, f, what);
          f += 8;
          return value;
        };
        if (size === MAX32) size = next();
        if (compressedSize === MAX32) compressedSize = next();
        if (localOffset === MAX32) localOffset = next();
      }
      x += 4 + length;
    }
    entries.push({
      name,
      flags: view.getUint16(at + 8, true),
      method: view.getUint16(at + 10, true),
      compressedSize,
      size,
      localOffset,
    });
    at = end;
  }
  return entries;
}

/**
 * Inflates the entries named in `wanted` (name → largest inflated size allowed), after checking
 * every entry's declared sizes against `limits` (see the module comment). Entries not named are
 * never inflated; a wanted entry that is absent is left out of `files`. `names` lists every entry.
 */
export function readZipEntries(
  bytes: Uint8Array,
  what: string,
  wanted: Readonly<Record<string, number>>,
  limits: ZipLimits,
): { files: Record<string, Uint8Array>; names: string[] } {
  const entries = listZip(bytes, what);
  const setting = limits.setting ? ` (${limits.setting})` : '';
  let total = 0;
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name))
      throw new ArchiveError(`${what} holds two entries named ${label(e.name)}: refused as ambiguous`);
    seen.add(e.name);
    total += e.size;
    if (e.size > RATIO_FLOOR_BYTES && e.size > limits.maxRatio * Math.max(1, e.compressedSize)) {
      throw new ArchiveError(
        `${what}: entry ${label(e.name)} would inflate ${human(e.compressedSize)} to ${human(e.size)} ` +
          `(ratio ${Math.round(e.size / Math.max(1, e.compressedSize))}:1, over the ${limits.maxRatio}:1 limit): refused as a possible zip bomb`,
      );
    }
  }
  if (total > limits.maxTotalBytes) {
    throw new ArchiveError(
      `${what}: its ${entries.length} entries would inflate to ${human(total)}, over the ${human(limits.maxTotalBytes)} limit${setting}`,
    );
  }
  const out: Record<string, Uint8Array> = {};
  for (const e of entries) {
    const cap = Object.hasOwn(wanted, e.name) ? wanted[e.name] : undefined;
    if (cap === undefined) continue;
    if (e.size > cap) {
      throw new ArchiveError(
        `${what}: entry ${label(e.name)} would inflate to ${human(e.size)}, over its ${human(cap)} limit${setting}`,
      );
    }
    out[e.name] = inflateEntry(bytes, e, what);
  }
  return { files: out, names: entries.map((e) => label(e.name)) };
}

function inflateEntry(bytes: Uint8Array, e: Entry, what: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entry = `${what}: entry ${label(e.name)}`;
  if (e.flags & 1) throw new ArchiveError(`${entry} is encrypted`);
  if (e.localOffset + 30 > bytes.length || view.getUint32(e.localOffset, true) !== LOCAL) {
    throw new ArchiveError(`${entry} cannot be read (truncated or damaged): its local header is missing`);
  }
  const start =
    e.localOffset + 30 + view.getUint16(e.localOffset + 26, true) + view.getUint16(e.localOffset + 28, true);
  if (start + e.compressedSize > bytes.length) {
    throw new ArchiveError(
      `${entry} cannot be read (truncated or damaged): its ${e.compressedSize} bytes run past the end of the file`,
    );
  }
  const data = bytes.subarray(start, start + e.compressedSize);
  if (e.method === 0) {
    if (e.compressedSize !== e.size) {
      throw new ArchiveError(
        `${entry} is stored (not compressed) but declares ${e.compressedSize} bytes stored and ${e.size} inflated`,
      );
    }
    return data.slice();
  }
  if (e.method !== 8)
    throw new ArchiveError(`${entry} uses compression method ${e.method}; only stored and deflate are read`);
  const out = new Uint8Array(e.size);
  let written = 0;
  const inflater = new Inflate((chunk) => {
    if (written + chunk.length > e.size) {
      throw new ArchiveError(
        `${entry} inflates to more than the ${e.size} bytes its header declares: refused as damaged or a zip bomb`,
      );
    }
    out.set(chunk, written);
    written += chunk.length;
  });
  try {
    if (data.length === 0) inflater.push(data, true);
    for (let i = 0; i < data.length; i += INFLATE_CHUNK) {
      inflater.push(data.subarray(i, i + INFLATE_CHUNK), i + INFLATE_CHUNK >= data.length);
    }
  } catch (cause) {
    if (cause instanceof ArchiveError) throw cause;
    throw new ArchiveError(
      `${entry} cannot be inflated (truncated or damaged): ${(cause as Error).message}`,
      { cause },
    );
  }
  if (written !== e.size) {
    throw new ArchiveError(
      `${entry} inflates to ${written} bytes, not the ${e.size} its header declares (truncated or damaged)`,
    );
  }
  return out;
}
