/**
 * Builds zip archives byte by byte for tests of untrusted archives: any declared size, any
 * compressed data (including deflate streams far larger once inflated than their headers say),
 * duplicate names. Real archives come from fflate's zipSync.
 */
import zlib from 'node:zlib';

export interface ZipEntrySpec {
  readonly name: string;
  /** The entry's data as stored: raw bytes for method 0, a raw deflate stream for method 8. */
  readonly data: Uint8Array;
  /** 0 stored, 8 deflate. @default 0 */
  readonly method?: number;
  /** The inflated size its headers declare. @default data.length */
  readonly size?: number;
}

const crc32 = (data: Uint8Array): number =>
  (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32?.(data) ?? 0;

export function buildZip(entries: readonly ZipEntrySpec[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.method ?? 0;
    const size = e.size ?? e.data.length;
    const crc = method === 0 ? crc32(e.data) : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(e.data.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + e.data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, cd, end]));
}

/**
 * A raw deflate stream of `mib` MiB of zeros, ~1 KiB per MiB (deflate's best ratio, ~1,030:1),
 * built without deflating them all: after a sync flush the encoder emits the same bytes for every
 * further MiB of zeros, so one such MiB is repeated, then an empty final block closes the stream.
 */
export async function zerosDeflated(mib: number): Promise<Uint8Array> {
  const deflater = zlib.createDeflateRaw({ level: 9 });
  const zero = Buffer.alloc(1 << 20);
  const flushed = () =>
    new Promise<Buffer>((resolve) => {
      const parts: Buffer[] = [];
      const take = (chunk: Buffer) => parts.push(chunk);
      deflater.on('data', take);
      deflater.write(zero);
      deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        deflater.off('data', take);
        resolve(Buffer.concat(parts));
      });
    });
  const first = await flushed();
  const second = await flushed();
  const third = await flushed();
  deflater.close();
  if (!second.equals(third)) throw new Error('zlib does not repeat itself here: build the bomb another way');
  const parts: Uint8Array[] = [first];
  for (let i = 1; i < mib; i++) parts.push(second);
  parts.push(Uint8Array.of(0x03, 0x00));
  return new Uint8Array(Buffer.concat(parts));
}
