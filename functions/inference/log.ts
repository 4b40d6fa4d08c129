/**
 * The structured logger every serving module writes to. Powertools' Logger fits it (telemetry.ts);
 * tests and the local stack pass their own. A logger must not throw.
 */
export interface Log {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}
