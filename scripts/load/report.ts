/**
 * The load run's report: what the server child sampled and what each phase answered, as JSON
 * (written to .local/load-last.json) with the checks the run must pass, and as a table.
 */
import { cpus } from 'node:os';
import type { Options } from './options.js';
import { type Phase, summarizePhase } from './phase.js';
import { UNKNOWN_MODELS } from './requests.js';
import type { Sample } from './server.js';

/** The silent phase's warm throughput must be at least this share of the healthy one's. */
export const SILENT_THROUGHPUT_FLOOR = 0.8;

const round = (x: number, digits = 1) => Number(x.toFixed(digits));
const mb = (bytes: number) => round(bytes / 2 ** 20);

/** What a run gathered, each taken when the run took it. */
export interface RunData {
  readonly options: Options;
  /** The server child's sample once the model has loaded, before any load. */
  readonly baseline: Sample | undefined;
  /** The names of the mixed phase's requests, in order. */
  readonly mix: string[];
  readonly mixed: Phase;
  /** The server child's samples during the mixed phase (and one after). */
  readonly during: Sample[];
  /** The server child's stderr lines up to the end of the mixed phase. */
  readonly mixedProblems: readonly string[];
  /** How many stderr lines the server child wrote in the whole run. */
  readonly serverLogLines: number;
  readonly healthy: Phase;
  readonly silent: Phase;
  /** Connections the function made to the silent registry (alias re-checks). */
  readonly silentConnections: number;
  readonly failedAliasChecks: number;
}

export function buildReport(d: RunData) {
  const { result, tallies, examples } = d.mixed;
  const { baseline, during } = d;
  const rss = during.map((s) => s.rss);
  const tensors = during.map((s) => s.tensors).filter((t): t is number => t !== null);
  const third = Math.max(1, Math.floor(rss.length / 3));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const rssFirst = median(rss.slice(0, third));
  const rssLast = median(rss.slice(-third));
  const wrong = [...tallies.values()].reduce((n, t) => n + t.wrong, 0);
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count ?? 0]),
  );
  const warnings = d.mixedProblems.filter((line) => /"level":"(WARN|ERROR|CRITICAL)"|Error|leak/i.test(line));
  const unknown = [...tallies].filter(([name]) => name.startsWith('unknown model'));
  const unknownStatuses: Record<string, number> = {};
  for (const [, t] of unknown) {
    for (const [code, n] of Object.entries(t.statuses))
      unknownStatuses[code] = (unknownStatuses[code] ?? 0) + n;
  }

  const warm = {
    healthy: summarizePhase(d.healthy),
    silent: {
      ...summarizePhase(d.silent),
      registryConnections: d.silentConnections,
      failedAliasChecks: d.failedAliasChecks,
    },
    ratio: round(d.silent.result.requests.average / Math.max(1, d.healthy.result.requests.average), 2),
  };

  const report = {
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    settings: { ...d.options, serverRuntime: baseline?.runtime ?? null, mix: d.mix },
    requests: {
      total: result.requests.total,
      perSecond: round(result.requests.average, 0),
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
      statusCodes,
      '2xx': result['2xx'],
      '4xx': result['4xx'],
      '5xx': result['5xx'],
      errors: result.errors,
      timeouts: result.timeouts,
    },
    answers: {
      checked: [...tallies.values()].reduce((n, t) => n + t.count, 0),
      wrong,
      examples,
      byRequest: Object.fromEntries([...tallies].map(([name, t]) => [name, t])),
    },
    memory: {
      samples: rss.length,
      rssMB: {
        min: mb(Math.min(...rss)),
        max: mb(Math.max(...rss)),
        firstThird: mb(rssFirst),
        lastThird: mb(rssLast),
      },
      rssGrowthMB: mb(rssLast - rssFirst),
      baselineRssMB: baseline ? mb(baseline.rss) : null,
      heapUsedMB: {
        min: mb(Math.min(...during.map((s) => s.heapUsed))),
        max: mb(Math.max(...during.map((s) => s.heapUsed))),
      },
      tensors: tensors.length
        ? { min: Math.min(...tensors), max: Math.max(...tensors), baseline: baseline?.tensors ?? null }
        : null,
    },
    serverLogLines: {
      total: d.serverLogLines,
      warnOrError: warnings.length,
      examples: warnings.slice(0, 3),
    },
    unknownModels: { names: UNKNOWN_MODELS, statusCodes: unknownStatuses },
    warm,
    checks: {
      zero5xx: result['5xx'] === 0,
      unknownModelsAll404: Object.keys(unknownStatuses).every((code) => code === '404'),
      noConnectionErrors: result.errors === 0 && result.timeouts === 0,
      answersCorrect: wrong === 0,
      tensorCountFlat: tensors.length > 0 && Math.min(...tensors) === Math.max(...tensors),
      // Lenient on purpose (GC and allocator noise): a leak of a few KB per request breaks it.
      rssBounded: rssLast - rssFirst < 128 * 2 ** 20,
      warmZero5xxBothPhases: warm.healthy['5xx'] === 0 && warm.silent['5xx'] === 0,
      warmAnswersCorrect:
        warm.healthy.wrong + warm.silent.wrong === 0 &&
        warm.healthy.errors + warm.silent.errors + warm.healthy.timeouts + warm.silent.timeouts === 0,
      // The silent phase must have crossed a re-check, or it proves nothing.
      silentPhaseRechecked: d.silentConnections > 0,
      silentThroughputHeld: warm.ratio >= SILENT_THROUGHPUT_FLOOR,
    },
  };
  return report;
}

export type Report = ReturnType<typeof buildReport>;

export function printTable(r: Report, ok: boolean) {
  const q = r.requests;
  const m = r.memory;
  const rows: [string, string][] = [
    ['duration / connections', `${r.settings.seconds} s / ${r.settings.connections}`],
    ['server runtime', String(r.settings.serverRuntime)],
    ['requests', `${q.total} (${q.perSecond}/s), p50 ${q.latencyMs.p50} ms, p99 ${q.latencyMs.p99} ms`],
    [
      'status codes',
      Object.entries(q.statusCodes)
        .map(([c, n]) => `${c}: ${n}`)
        .join(', '),
    ],
    ['5xx / errors / timeouts', `${q['5xx']} / ${q.errors} / ${q.timeouts}`],
    ['answers checked / wrong', `${r.answers.checked} / ${r.answers.wrong}`],
    [
      'server RSS min / max',
      `${m.rssMB.min} / ${m.rssMB.max} MB (growth ${m.rssGrowthMB} MB, ${m.samples} samples)`,
    ],
    ['server heap min / max', `${m.heapUsedMB.min} / ${m.heapUsedMB.max} MB`],
    ['tfjs tensors min / max', m.tensors ? `${m.tensors.min} / ${m.tensors.max}` : 'not readable'],
    ['server WARN/ERROR log lines', String(r.serverLogLines.warnOrError)],
    [
      'unknown models',
      `${r.unknownModels.names.join(', ')}: ${Object.entries(r.unknownModels.statusCodes)
        .map(([c, n]) => `${c}: ${n}`)
        .join(', ')}`,
    ],
    [
      'warm, registry healthy',
      `${r.warm.healthy.total} (${r.warm.healthy.perSecond}/s), p99 ${r.warm.healthy.latencyMs.p99} ms, max ${r.warm.healthy.latencyMs.max} ms, 5xx ${r.warm.healthy['5xx']}`,
    ],
    [
      'warm, registry silent',
      `${r.warm.silent.total} (${r.warm.silent.perSecond}/s), p99 ${r.warm.silent.latencyMs.p99} ms, max ${r.warm.silent.latencyMs.max} ms, 5xx ${r.warm.silent['5xx']}; ${r.warm.silent.registryConnections} registry connections, ${r.warm.silent.failedAliasChecks} failed re-checks`,
    ],
    ['silent / healthy throughput', `${r.warm.ratio}× (floor ${SILENT_THROUGHPUT_FLOOR}×)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
  for (const [name, passed] of Object.entries(r.checks)) {
    process.stdout.write(`${passed ? 'ok  ' : 'FAIL'} ${name}\n`);
  }
  for (const example of [...r.answers.examples, ...r.warm.healthy.examples, ...r.warm.silent.examples])
    process.stdout.write(`  wrong: ${example}\n`);
  process.stdout.write(`${ok ? 'load run held' : 'load run FAILED'}\n`);
}
