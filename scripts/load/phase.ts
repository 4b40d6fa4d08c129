/**
 * One load phase: an autocannon run of a request mix (cycled per connection) with every answer
 * checked against its expectation, tallied per request kind, and a phase's summary for the report.
 */
import autocannon from 'autocannon';
import { checkAnswer, type RequestMix, type Tally } from './requests.js';

export interface Phase {
  readonly result: autocannon.Result;
  readonly tallies: Map<string, Tally>;
  readonly examples: string[];
}

/** One autocannon run of `mix` (cycled per connection), every answer checked against its expectation. */
export async function runPhase(
  base: string,
  mix: RequestMix,
  seconds: number,
  connections: number,
): Promise<Phase> {
  const tallies = new Map<string, Tally>();
  const examples: string[] = [];
  const requests = mix.map(({ request, expect }) => {
    const tally: Tally = { count: 0, wrong: 0, statuses: {} };
    tallies.set(expect.name, tally);
    return {
      ...request,
      onResponse: (status: number, body: string) => {
        tally.count++;
        tally.statuses[status] = (tally.statuses[status] ?? 0) + 1;
        const problem = checkAnswer(expect, status, body);
        if (problem) {
          tally.wrong++;
          if (examples.length < 5) examples.push(`${expect.name}: ${problem}`);
        }
      },
    };
  });
  const result = await autocannon({ url: base, connections, duration: seconds, timeout: 10, requests });
  return { result, tallies, examples };
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** A phase's figures and answer checks, for the report. */
export function summarizePhase(phase: Phase) {
  return {
    total: phase.result.requests.total,
    perSecond: round(phase.result.requests.average, 0),
    latencyMs: {
      p50: phase.result.latency.p50,
      p99: phase.result.latency.p99,
      max: phase.result.latency.max,
    },
    '5xx': phase.result['5xx'],
    errors: phase.result.errors,
    timeouts: phase.result.timeouts,
    wrong: [...phase.tallies.values()].reduce((n, t) => n + t.wrong, 0),
    examples: phase.examples,
  };
}
