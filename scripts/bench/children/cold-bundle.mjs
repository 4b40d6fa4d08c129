// A fresh process → the first prediction through the built inference bundle, as a Lambda cold start.
// process.hrtime, not performance.now(): the first use of `performance` loads perf_hooks, which the
// function itself does not, and the harness should not add to what it measures.
const started = process.hrtime.bigint();
const { handler } = await import(process.env.BENCH_BUNDLE);
const res = await handler({
  rawPath: `/v1/models/${process.env.BENCH_MODEL}:predict`,
  requestContext: { http: { method: 'POST' } },
  body: JSON.stringify({ instances: [[6, 148, 72, 35, 0, 33.6, 0.627, 50]] }),
});
if (res.statusCode !== 200) {
  console.error(res.body);
  process.exit(1);
}
process.stdout.write(JSON.stringify({ inProcessMs: Number(process.hrtime.bigint() - started) / 1e6 }));
