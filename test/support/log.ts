/** A Log that writes each line as `<level> <message> <fields as JSON>` into `lines`, for tests to read. */
import type { Log } from '../../functions/inference/log.js';

export function linesLog(lines: string[]): Log {
  return {
    info: (m, e) => lines.push(`info ${m} ${JSON.stringify(e ?? {})}`),
    warn: (m, e) => lines.push(`warn ${m} ${JSON.stringify(e ?? {})}`),
    error: (m, e) => lines.push(`error ${m} ${JSON.stringify(e ?? {})}`),
  };
}
