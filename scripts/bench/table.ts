/** The bench report as a table: every figure beside its floor, its ratio and its target. */

// biome-ignore lint/suspicious/noExplicitAny: the report is this file's own JSON, printed as it was built.
export function printTable(r: Record<string, any>) {
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  const ratio = (x: number, iv: any) =>
    iv ? `${x}× (${Math.round(iv.confidence * 100)} %: ${iv.low}–${iv.high})` : `${x}×`;
  const rows: string[][] = [['figure', 'aiaas', 'floor', 'ratio', 'target']];
  const c = r.coldStart;
  if (c)
    rows.push([
      'cold start → first prediction',
      `${c.ms} ms`,
      `${c.floorMs} ms (node -e 0)`,
      ratio(c.ratio, c.ratioInterval),
      '≤ 2.0×',
    ]);
  if (c?.deployedMs !== undefined)
    rows.push([
      '  with deployed settings (metrics, INFO)',
      `${c.deployedMs} ms`,
      '',
      `${c.deployedRatio}×`,
      '',
    ]);
  if (c) rows.push(['  same model on tfjs (fast path off)', `${c.tfjsMs} ms`, '', `${c.tfjsRatio}×`, '']);
  if (c) rows.push(['  naive (umbrella tfjs, unbundled)', `${c.naiveMs} ms`, '', `${c.naiveRatio}×`, '']);
  const w = r.warm;
  if (w)
    rows.push([
      'warm predict throughput',
      `${w.ours.requestsPerSecond} req/s (p50 ${w.ours.p50Us} µs, p99 ${w.ours.p99Us} µs)`,
      `${w.floor.requestsPerSecond} req/s (p50 ${w.floor.p50Us} µs, p99 ${w.floor.p99Us} µs; bare node http)`,
      ratio(w.throughputRatio, w.throughputRatioInterval),
      '≥ 0.6×',
    ]);
  if (w?.serverCpuUsPerRequest)
    rows.push([
      '  server CPU per request',
      `${w.serverCpuUsPerRequest.ours} µs`,
      `${w.serverCpuUsPerRequest.floor} µs`,
      '',
      '',
    ]);
  if (w?.oneConnection)
    rows.push([
      '  one request at a time (latency)',
      `p50 ${w.oneConnection.ours.p50Us} µs, p99 ${w.oneConnection.ours.p99Us} µs`,
      `p50 ${w.oneConnection.floor.p50Us} µs, p99 ${w.oneConnection.floor.p99Us} µs`,
      '',
      '',
    ]);
  const m = r.modelLoad;
  if (m)
    rows.push([
      `model load (${m.megabytes} MB, ${m.shards} shards)`,
      `${m.ms} ms`,
      `${m.floorMs} ms (raw parallel GET)`,
      ratio(m.ratio, m.ratioInterval),
      '≥ 0.8×',
    ]);
  if (m?.touchedFloorMs)
    rows.push([
      '  floor into buffers already touched',
      '',
      `${m.touchedFloorMs} ms`,
      `${m.touchedFloorRatio}×`,
      '',
    ]);
  if (r.synth) {
    rows.push([
      'cdk synth 1 / 10 / 50 models',
      `${r.synth.seconds['1']} / ${r.synth.seconds['10']} / ${r.synth.seconds['50']} s`,
      '',
      `${r.synth.ratio50to1}×`,
      '≤ 3×',
    ]);
  }
  for (const [kind, sizes] of Object.entries(
    (r.batch?.instancesPerSecond ?? {}) as Record<string, Record<string, number>>,
  )) {
    rows.push([`batch ${kind}: instances/s at 1 / 100 / 10k`, Object.values(sizes).join(' / '), '', '', '']);
  }
  const ro = r.rollout;
  if (ro)
    rows.push([
      'warm invocation with a 10 % canary / a 10 % shadow',
      `${ro.usPerInvocation.canary10} µs / ${ro.usPerInvocation.shadow10} µs`,
      `${ro.usPerInvocation.plain} µs (no canary, no shadow)`,
      `${ro.ratioToPlain.canary10}× / ${ro.ratioToPlain.shadow10}×`,
      'reported',
    ]);
  const bj = r.batchJob;
  if (bj?.rowsPerSecond !== undefined)
    rows.push([
      `local batch job (${bj.rows} rows)`,
      `${Math.round(bj.rowsPerSecond)} rows/s (${bj.threads} threads scoring)`,
      `${Math.round(bj.floorRowsPerSecond ?? 0)} rows/s (the same job in one thread)`,
      ratio(bj.ratio, bj.ratioInterval),
      '≥ 0.5×',
    ]);
  if (bj?.rowsPerSecondInOneThread !== undefined)
    rows.push([
      '  scored in one thread',
      `${Math.round(bj.rowsPerSecondInOneThread)} rows/s`,
      '',
      `${bj.oneThreadRatio}×`,
      '',
    ]);
  const a = r.artifacts;
  if (a)
    rows.push([
      'function zip / layer zip',
      `${a.functionZipMB} MB / ${a.layerZipMB} MB`,
      `250 MB unzipped limit; tfjs-node ${a.tfjsNodeUnzippedMB} MB`,
      '',
      '',
    ]);
  if (r.memory)
    rows.push([
      'memory over 10k predictions',
      `tfjs RSS ${r.memory.rssMB.join(' → ')} MB; fast path RSS ${r.memory.fastPathRssMB.join(' → ')} MB`,
      `tensors ${r.memory.tensorCount.join(' → ')}`,
      r.memory.flat ? 'flat' : 'GROWS',
      'flat',
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  for (const row of rows)
    process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
  process.stdout.write(
    '\nratio: the median of back-to-back pairs; in brackets, the interval that holds the median of a much longer run with that confidence (order statistics).\n',
  );
  process.stdout.write(`machine: ${JSON.stringify(r.machine)}\n`);
}
