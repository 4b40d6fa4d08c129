/**
 * The training report picture: loss (and accuracy) per epoch, train and validation, as a
 * self-contained SVG. Written by hand rather than with a charting library, which would be a large
 * dependency in the Lambda bundle for two line charts.
 */

export interface ReportInput {
  readonly model: string;
  readonly version: number;
  /** Per-epoch values under Keras names (loss, val_loss, accuracy, val_accuracy). */
  readonly history: Readonly<Record<string, readonly number[]>>;
  /** A line under the title: data, split, settings. */
  readonly subtitle?: string;
}

const WIDTH = 980;
const HEIGHT = 510;
const PANEL = { top: 96, bottom: 114, left: 80, right: 28 };
const COLORS = {
  train: '#1f77b4',
  validation: '#ff7f0e',
  grid: '#e5e5e5',
  axis: '#333',
  text: '#222',
  muted: '#666',
};
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

/** Round axis steps (1, 2, 2.5, 5 × 10^n) giving about `count` ticks over [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

function label(value: number): string {
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(1);
  return String(Number(value.toPrecision(4)));
}

interface Series {
  readonly name: string;
  readonly values: readonly number[];
  readonly color: string;
  readonly dashed: boolean;
}

function panel(
  x0: number,
  width: number,
  title: string,
  yLabel: string,
  series: Series[],
  fixedRange?: [number, number],
) {
  const y0 = PANEL.top;
  const height = HEIGHT - PANEL.top - PANEL.bottom;
  const epochs = Math.max(1, ...series.map((s) => s.values.length));
  const finite = series.flatMap((s) => s.values.filter(Number.isFinite));
  let [lo, hi] = fixedRange ?? [Math.min(...finite), Math.max(...finite)];
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (!fixedRange) {
    // Headroom so curves do not run along the frame.
    const pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
    lo = Math.max(lo >= 0 ? 0 : -Infinity, lo - pad);
    hi += pad;
  }
  const yTicks = niceTicks(lo, hi);
  lo = Math.min(lo, yTicks[0]!);
  hi = Math.max(hi, yTicks[yTicks.length - 1]!);
  const sx = (epoch: number) => x0 + (epochs === 1 ? width / 2 : ((epoch - 1) / (epochs - 1)) * width);
  const sy = (v: number) => y0 + height - ((v - lo) / (hi - lo || 1)) * height;
  const xTicks = niceTicks(1, epochs, Math.min(8, epochs - 1 || 1)).filter(
    (t) => Number.isInteger(t) && t >= 1,
  );

  const out: string[] = [];
  out.push(`<g class="panel" aria-label="${escapeXml(title)}">`);
  out.push(
    `<text x="${x0 + width / 2}" y="${y0 - 14}" text-anchor="middle" font-size="15" font-weight="bold" fill="${COLORS.text}" ${FONT}>${escapeXml(title)}</text>`,
  );
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    out.push(
      `<line x1="${x0}" y1="${y}" x2="${x0 + width}" y2="${y}" stroke="${COLORS.grid}" stroke-width="1"/>`,
    );
    out.push(
      `<text x="${x0 - 8}" y="${y}" dy="4" text-anchor="end" font-size="12" fill="${COLORS.muted}" ${FONT}>${label(t)}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    out.push(
      `<line x1="${x}" y1="${y0 + height}" x2="${x}" y2="${y0 + height + 5}" stroke="${COLORS.axis}"/>`,
    );
    out.push(
      `<text x="${x}" y="${y0 + height + 20}" text-anchor="middle" font-size="12" fill="${COLORS.muted}" ${FONT}>${t}</text>`,
    );
  }
  out.push(
    `<rect x="${x0}" y="${y0}" width="${width}" height="${height}" fill="none" stroke="${COLORS.axis}" stroke-width="1"/>`,
  );
  out.push(
    `<text x="${x0 + width / 2}" y="${y0 + height + 44}" text-anchor="middle" font-size="13" fill="${COLORS.text}" ${FONT}>epoch</text>`,
  );
  const yMid = y0 + height / 2;
  out.push(
    `<text x="${x0 - 52}" y="${yMid}" transform="rotate(-90 ${x0 - 52} ${yMid})" text-anchor="middle" font-size="13" fill="${COLORS.text}" ${FONT}>${escapeXml(yLabel)}</text>`,
  );

  for (const s of series) {
    const points = s.values
      .map((v, i) => (Number.isFinite(v) ? `${sx(i + 1).toFixed(1)},${sy(v).toFixed(1)}` : undefined))
      .filter((p): p is string => p !== undefined);
    if (points.length === 1) {
      const [cx, cy] = points[0]!.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${s.color}"/>`);
    } else if (points.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${s.dashed ? ' stroke-dasharray="7 4"' : ''} points="${points.join(' ')}"><title>${escapeXml(s.name)}</title></polyline>`,
      );
    }
  }

  // Legend under the axis title, outside the plot, one entry a line, so it never hides a curve; each entry shows the
  // series' last value.
  const lx = x0;
  let ly = y0 + height + 66;
  for (const s of series) {
    const last = [...s.values].reverse().find(Number.isFinite);
    const text = `${s.name}${last === undefined ? '' : `: ${label(last)}`}`;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 28}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="7 4"' : ''}/>`,
    );
    out.push(
      `<text x="${lx + 34}" y="${ly}" font-size="12" fill="${COLORS.text}" ${FONT}>${escapeXml(text)}</text>`,
    );
    ly += 18;
  }
  out.push('</g>');
  return out.join('\n');
}

/**
 * Renders the loss curves (train and validation) and, when the history has them, the accuracy
 * curves, one panel each, titled with the model and version.
 */
export function renderTrainingReport(input: ReportInput): string {
  const { history } = input;
  const pick = (name: string, display: string, color: string, dashed: boolean): Series[] =>
    history[name]?.length ? [{ name: display, values: history[name]!, color, dashed }] : [];
  const loss = [
    ...pick('loss', 'loss (train)', COLORS.train, false),
    ...pick('val_loss', 'val_loss (validation)', COLORS.validation, true),
  ];
  const accuracy = [
    ...pick('accuracy', 'accuracy (train)', COLORS.train, false),
    ...pick('val_accuracy', 'val_accuracy (validation)', COLORS.validation, true),
  ];
  const panels: Array<{ title: string; yLabel: string; series: Series[]; range?: [number, number] }> = [];
  if (loss.length) panels.push({ title: 'Loss', yLabel: 'loss', series: loss });
  if (accuracy.length) {
    const values = accuracy.flatMap((s) => s.values.filter(Number.isFinite));
    // Accuracy lives in [0, 1]; zoom to where the curves are, but never past those bounds.
    const lo = Math.max(0, Math.floor((Math.min(...values) - 0.02) * 20) / 20);
    const hi = Math.min(1, Math.ceil((Math.max(...values) + 0.02) * 20) / 20);
    panels.push({
      title: 'Accuracy',
      yLabel: 'accuracy',
      series: accuracy,
      range: [lo, hi > lo ? hi : lo + 0.05],
    });
  }
  const title = `${input.model} v${input.version} · training report`;
  const slot = WIDTH / Math.max(1, panels.length);
  const body = panels.map((p, i) =>
    panel(i * slot + PANEL.left, slot - PANEL.left - PANEL.right, p.title, p.yLabel, p.series, p.range),
  );
  if (panels.length === 0) {
    body.push(
      `<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle" font-size="14" fill="${COLORS.muted}" ${FONT}>no training history</text>`,
    );
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="34" text-anchor="middle" font-size="20" font-weight="bold" fill="${COLORS.text}" ${FONT}>${escapeXml(title)}</text>`,
    input.subtitle
      ? `<text x="${WIDTH / 2}" y="58" text-anchor="middle" font-size="13" fill="${COLORS.muted}" ${FONT}>${escapeXml(input.subtitle)}</text>`
      : '',
    ...body,
    '</svg>',
    '',
  ]
    .filter((line) => line !== '')
    .join('\n');
}
