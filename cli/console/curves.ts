/**
 * Training curves drawn by the console itself, from a version's per-epoch history when its
 * metadata carries one (`training.history`: metric name → one number per epoch). Drawing our own
 * SVG from numbers means nothing from the registry is rendered as markup; versions without a
 * history show the registry's report picture as an <img> instead (see server.ts).
 */
import { type Html, html } from './html.js';

export type History = Readonly<Record<string, readonly number[]>>;

const MAX_EPOCHS = 100_000;

/** The history in a version's training metadata, when it is a well-formed one. */
export function historyOf(training: Readonly<Record<string, unknown>> | undefined): History | undefined {
  const history = training?.history;
  if (typeof history !== 'object' || history === null || Array.isArray(history)) return undefined;
  const out: Record<string, number[]> = {};
  for (const [name, values] of Object.entries(history)) {
    if (!Array.isArray(values) || values.length === 0 || values.length > MAX_EPOCHS) continue;
    // JSON writes a NaN epoch (a diverged loss) as null: a gap in the curve, not a broken series.
    if (!values.every((v) => typeof v === 'number' || v === null)) continue;
    out[name] = values.map((v) => (v === null ? Number.NaN : v));
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const W = 460;
const H = 200;
const PAD = { left: 48, right: 12, top: 24, bottom: 28 };
const COLORS = ['#1f6feb', '#d97706', '#059669', '#9333ea'];

/**
 * One panel: the metric and its validation series (e.g. loss and val_loss), per epoch, on the axes
 * that fit every history in `all` — so two versions drawn side by side share their scales.
 */
function panel(history: History, all: readonly History[], metric: string, title: string): Html | undefined {
  const named = (h: History) =>
    [metric, `val_${metric}`].flatMap((name) => (h[name] ? [[name, h[name]] as const] : []));
  const series = named(history);
  if (series.length === 0) return undefined;
  const everyone = all.flatMap(named);
  if (!series.some(([, v]) => v.some(Number.isFinite))) return undefined;
  // A loop, not Math.min(...values): a long history would overflow the call's arguments.
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let epochs = 0;
  for (const [, values] of everyone) {
    epochs = Math.max(epochs, values.length);
    for (const v of values) {
      if (!Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (hi === lo) {
    hi += 0.5;
    lo -= 0.5;
  }
  const x = (i: number) => PAD.left + (epochs <= 1 ? 0 : (i / (epochs - 1)) * (W - PAD.left - PAD.right));
  const y = (v: number) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  // The legend goes where the curves are not: top right when they fall, bottom right when they rise.
  const rising = series.some(([, v]) => (v.at(-1) ?? 0) > (v[0] ?? 0));
  const legendY = (k: number) =>
    rising ? H - PAD.bottom - 8 - 14 * (series.length - 1 - k) : PAD.top + 14 * (k + 1);
  const lines = series.map(([name, values], k) => {
    const points = values
      .map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : ''))
      .filter(Boolean)
      .join(' ');
    return html`<polyline fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="2"${name.startsWith('val_') ? html` stroke-dasharray="5 3"` : ''} points="${points}"><title>${name}</title></polyline>
      <text x="${W - PAD.right - 4}" y="${legendY(k)}" text-anchor="end" font-size="11" fill="${COLORS[k % COLORS.length]}">${name} ${values.at(-1)?.toFixed(4)}</text>`;
  });
  return html`<svg class="curve" role="img" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">
    <title>${title}</title>
    <text x="${PAD.left}" y="15" font-size="12" font-weight="bold" fill="#222">${title}</text>
    <line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="#999"/>
    <line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}" stroke="#999"/>
    <text x="${PAD.left - 4}" y="${PAD.top + 4}" text-anchor="end" font-size="10" fill="#555">${hi.toPrecision(3)}</text>
    <text x="${PAD.left - 4}" y="${H - PAD.bottom}" text-anchor="end" font-size="10" fill="#555">${lo.toPrecision(3)}</text>
    <text x="${W - PAD.right}" y="${H - 8}" text-anchor="end" font-size="10" fill="#555">epoch ${epochs}</text>
    ${lines}
  </svg>`;
}

/**
 * Loss and accuracy panels drawn from a history (whichever it has), on scales that also fit the
 * histories in `alongside` (the versions it is shown beside).
 */
export function curves(history: History, alongside: readonly History[] = []): Html {
  const all = [history, ...alongside];
  return html`${panel(history, all, 'loss', 'loss')}${panel(history, all, 'accuracy', 'accuracy')}`;
}
