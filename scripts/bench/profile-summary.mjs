// Aggregates a V8 .cpuprofile (node --cpu-prof) by self time: per script URL and per function.
// Usage: node scripts/bench/profile-summary.mjs <file.cpuprofile|dir> [top=25]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [target, topArg] = process.argv.slice(2);
if (!target) {
  console.error('usage: profile-summary.mjs <file.cpuprofile|dir> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const files = statSync(target).isDirectory()
  ? readdirSync(target)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(target, f))
  : [target];

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byUrl = new Map();
  const byFn = new Map();
  for (const [id, ms] of self) {
    const { callFrame: f } = byId.get(id);
    const url = (f.url || `(${f.functionName || 'native'})`)
      .replace(/^file:\/\//, '')
      .replace(process.cwd(), '.');
    const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const urlKey = pkg ? `node_modules/${pkg}` : url;
    byUrl.set(urlKey, (byUrl.get(urlKey) ?? 0) + ms);
    const fnKey = `${f.functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
    byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + ms);
  }
  const print = (title, map) => {
    console.log(`\n${title}`);
    for (const [k, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`${ms.toFixed(1).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${k}`);
  };
  console.log(`== ${file}: ${total.toFixed(1)} ms sampled`);
  print('self time by script', byUrl);
  print('self time by function', byFn);
}
