// Aggregates a V8 .cpuprofile (node --cpu-prof) by self time: per script URL and per function.
// Frames in a bundle with a source map beside it (dist/**/*.mjs.map) are named by their source.
// Usage: node scripts/bench/profile-summary.mjs <file.cpuprofile|dir> [top=25] [--skip=<ms>]
//   --skip drops the first <ms> of samples (start-up and warm-up) to see the steady state.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SourceMapConsumer } from 'source-map-js';

const argv = process.argv.slice(2);
const skipMs = Number(argv.find((a) => a.startsWith('--skip='))?.slice('--skip='.length) ?? 0);
const [target, topArg] = argv.filter((a) => !a.startsWith('--'));
if (!target) {
  console.error('usage: profile-summary.mjs <file.cpuprofile|dir> [top] [--skip=<ms>]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const files = statSync(target).isDirectory()
  ? readdirSync(target)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(target, f))
  : [target];

const consumers = new Map();
/** The source position of a bundle frame, or undefined without a source map. */
function original(url, line, column) {
  if (!url.startsWith('file://')) return undefined;
  if (!consumers.has(url)) {
    const map = `${fileURLToPath(url)}.map`;
    consumers.set(url, existsSync(map) ? new SourceMapConsumer(JSON.parse(readFileSync(map, 'utf8'))) : null);
  }
  const consumer = consumers.get(url);
  const pos = consumer?.originalPositionFor({ line: line + 1, column });
  return pos?.source ? pos : undefined;
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let elapsed = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    elapsed += dt;
    if (elapsed < skipMs) continue;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byUrl = new Map();
  const byFn = new Map();
  for (const [id, ms] of self) {
    const { callFrame: f } = byId.get(id);
    const pos = original(f.url, f.lineNumber, f.columnNumber);
    const url = (pos ? pos.source.replace(/^(\.\.\/)+/, '') : f.url || `(${f.functionName || 'native'})`)
      .replace(/^file:\/\//, '')
      .replace(process.cwd(), '.');
    const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const urlKey = pkg ? `node_modules/${pkg}` : url;
    byUrl.set(urlKey, (byUrl.get(urlKey) ?? 0) + ms);
    const name = pos?.name ?? f.functionName ?? '';
    const line = pos ? pos.line : f.lineNumber + 1;
    const fnKey = `${name || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${line}`;
    byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + ms);
  }
  const print = (title, map) => {
    console.log(`\n${title}`);
    for (const [k, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`${ms.toFixed(1).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${k}`);
  };
  console.log(`== ${file}: ${total.toFixed(1)} ms sampled${skipMs ? ` after the first ${skipMs} ms` : ''}`);
  print('self time by script', byUrl);
  print('self time by function', byFn);
}
