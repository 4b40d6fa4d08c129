/**
 * UTF-8 text made by appending pieces. Every CHUNK pieces their string is encoded into the bytes,
 * so the pieces die young and no string of the whole text is made (the caller stores the bytes).
 * Pieces must be whole characters (rows, cells, line breaks), so no chunk ends inside one. Pure.
 */
export class TextBuilder {
  private static readonly CHUNK = 4096;
  private static readonly encoder = new TextEncoder();
  private buffer: Uint8Array;
  private length = 0;
  private chunk = '';
  private pieces = 0;

  constructor(sizeHint: number) {
    this.buffer = new Uint8Array(Math.max(1024, sizeHint));
  }

  add(piece: string): void {
    this.chunk += piece;
    if (++this.pieces === TextBuilder.CHUNK) this.flush();
  }

  bytes(): Uint8Array {
    this.flush();
    return this.buffer.subarray(0, this.length);
  }

  private flush(): void {
    // At most 3 bytes for each UTF-16 unit.
    const needed = this.length + this.chunk.length * 3;
    if (needed > this.buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.buffer.length * 2));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.length += TextBuilder.encoder.encodeInto(this.chunk, this.buffer.subarray(this.length)).written;
    this.chunk = '';
    this.pieces = 0;
  }
}
