/**
 * The load run's command line: `--seconds`, `--warm-seconds`, `--connections`, `--alias-check`,
 * `--json`, and `--serve` for its server child. A bad value is an error naming the flag and its range.
 */

export interface Options {
  seconds: number;
  /** Length of each warm phase (registry healthy, then silent). */
  warmSeconds: number;
  connections: number;
  aliasCheckSeconds: number;
  json: boolean;
}

export function parseArgs(argv: string[]): Options & { serve: boolean } {
  const options = {
    seconds: 60,
    warmSeconds: 15,
    connections: 32,
    aliasCheckSeconds: 5,
    json: false,
    serve: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const number = (name: string, min: number, max: number) => {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < min || value > max) {
        throw new Error(`${name} must be an integer from ${min} to ${max}`);
      }
      return value;
    };
    if (arg === '--json') options.json = true;
    else if (arg === '--serve') options.serve = true;
    else if (arg === '--seconds') options.seconds = number('--seconds', 1, 3600);
    else if (arg === '--warm-seconds') options.warmSeconds = number('--warm-seconds', 2, 600);
    else if (arg === '--connections') options.connections = number('--connections', 1, 1024);
    else if (arg === '--alias-check') options.aliasCheckSeconds = number('--alias-check', 1, 3600);
    else
      throw new Error(
        `unknown argument ${arg} (use --seconds N, --warm-seconds N, --connections N, --alias-check S, --json)`,
      );
  }
  return options;
}
