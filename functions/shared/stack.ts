/**
 * Stack traces in terms of the sources, for the rare unexpected error. The source map beside a
 * bundle is read only then: Node's `--enable-source-maps` would read and parse it on every cold
 * start instead (docs/benchmarks.md, "Round 4").
 */
import type { SourceMap } from 'node:module';

const maps = new Map<string, SourceMap | undefined>();

// `file:///var/task/index.mjs:14:2345`, with or without the parentheses of a named frame.
const FRAME = /(file:\/\/\/[^\s()]+\.m?js):(\d+):(\d+)/g;

/**
 * The stack with each frame of a bundle that has a `.map` beside it rewritten to its source file,
 * line and column (the bundle's position kept in brackets). Frames without a map, and the whole
 * stack when anything goes wrong, are returned as they are.
 */
export function sourceMappedStack(stack: string): string {
  try {
    return stack.replace(FRAME, (frame, url: string, line: string, column: string) => {
      const map = mapOf(url);
      const origin = map?.findOrigin(Number(line), Number(column));
      if (!origin || !('fileName' in origin) || !origin.fileName) return frame;
      const source = origin.fileName.replace(/^(\.\.\/)+/, '');
      return `${source}:${origin.lineNumber}:${origin.columnNumber} [${url.slice(url.lastIndexOf('/') + 1)}:${line}:${column}]`;
    });
  } catch {
    return stack;
  }
}

function mapOf(url: string): SourceMap | undefined {
  if (maps.has(url)) return maps.get(url);
  let map: SourceMap | undefined;
  try {
    const { fileURLToPath } = process.getBuiltinModule('node:url');
    const { readFileSync } = process.getBuiltinModule('node:fs');
    const { SourceMap } = process.getBuiltinModule('node:module');
    map = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, 'utf8')));
  } catch {
    map = undefined; // no map beside it, or not one Node can read: the frame stays as it is
  }
  maps.set(url, map);
  return map;
}
