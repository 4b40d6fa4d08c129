import { vi } from 'vitest';

/**
 * Captures everything written to stdout, stderr and the console (where Powertools and the console
 * fallback write) until `vi.restoreAllMocks()`. Returns the chunks as they are written.
 */
export function captureOutput(): string[] {
  const out: string[] = [];
  const capture = ((chunk: unknown) => {
    out.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      out.push(args.map(String).join(' '));
    });
  }
  return out;
}
