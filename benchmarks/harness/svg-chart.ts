// Charts as plain SVG text, drawn from the numbers (no browser, no library): a bar chart
// of throughput per system beside grouped bars of latency percentiles per system (log
// scale), and a per-second line chart for the failover run. Pure functions.

export interface SystemBars {
  system: string;
  /** Throughput bars, e.g. { 'max (closed loop)': 51000, 'p99 < 10 ms': 30000 }. */
  throughput: Record<string, number>;
  /** Latency bars in ms, e.g. { p50: 0.8, p99: 4.1, 'p99.9': 9.0 }. */
  latencyMs: Record<string, number>;
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) {
    const k = n / 1e3;
    return `${Number.isInteger(k) || k >= 100 ? k.toFixed(0) : k.toFixed(1)}k`;
  }
  if (n >= 10) return n.toFixed(0);
  if (n >= 1) return n.toFixed(1);
  return n.toFixed(2);
}

/** Round-ish upper bound for a linear axis. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

interface Panel {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** One panel of grouped bars; `scale` maps a value to 0..1 of the panel height. */
function groupedBars(
  out: string[],
  p: Panel,
  title: string,
  groups: string[],
  series: string[],
  value: (g: number, s: number) => number,
  scale: (v: number) => number,
  ticks: number[],
  unit: string,
): void {
  out.push(`<text x="${p.x + p.w / 2}" y="${p.y - 14}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (const t of ticks) {
    const y = p.y + p.h - scale(t) * p.h;
    out.push(`<line x1="${p.x}" y1="${y.toFixed(1)}" x2="${p.x + p.w}" y2="${y.toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${p.x - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11">${fmt(t)}${unit}</text>`);
  }
  out.push(`<line x1="${p.x}" y1="${p.y + p.h}" x2="${p.x + p.w}" y2="${p.y + p.h}" stroke="#333"/>`);
  const gw = p.w / Math.max(1, groups.length);
  const bw = Math.min(40, (gw * 0.8) / Math.max(1, series.length));
  groups.forEach((g, gi) => {
    const gx = p.x + gi * gw + (gw - bw * series.length) / 2;
    series.forEach((s, si) => {
      const v = value(gi, si);
      if (!(v > 0)) return;
      const h = Math.max(1, Math.min(1, scale(v)) * p.h);
      const x = gx + si * bw;
      const y = p.y + p.h - h;
      out.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${g} ${s}: ${v}`)}</title></rect>`);
      out.push(`<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
    });
    out.push(`<text x="${(p.x + gi * gw + gw / 2).toFixed(1)}" y="${p.y + p.h + 16}" text-anchor="middle" font-size="12">${esc(g)}</text>`);
  });
  series.forEach((s, si) => {
    const lx = p.x + si * 130;
    const ly = p.y + p.h + 34;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[si % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}" font-size="11">${esc(s)}</text>`);
  });
}

/** Throughput and latency percentiles per system, side by side. */
export function systemsChart(title: string, subtitle: string, systems: SystemBars[]): string {
  const W = 980;
  const H = 430;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" font-size="11" fill="#555">${esc(subtitle)}</text>`);
  const names = systems.map((s) => s.system);

  const tSeries = [...new Set(systems.flatMap((s) => Object.keys(s.throughput)))];
  const tMax = niceMax(Math.max(0, ...systems.flatMap((s) => Object.values(s.throughput))));
  const tTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * tMax);
  groupedBars(out, { x: 70, y: 90, w: 380, h: 260 }, 'Throughput (ops/s)', names, tSeries, (g, s) => systems[g]!.throughput[tSeries[s]!] ?? 0, (v) => v / tMax, tTicks, '');

  const lSeries = [...new Set(systems.flatMap((s) => Object.keys(s.latencyMs)))];
  const lValues = systems.flatMap((s) => Object.values(s.latencyMs)).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(1, ...lValues))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(10, ...lValues))));
  const logScale = (v: number) => (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo));
  const lTicks: number[] = [];
  for (let t = lo; t <= hi * 1.0001; t *= 10) lTicks.push(t);
  groupedBars(out, { x: 560, y: 90, w: 390, h: 260 }, 'Latency (ms, log scale)', names, lSeries, (g, s) => systems[g]!.latencyMs[lSeries[s]!] ?? 0, logScale, lTicks, '');
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export interface LineSeries {
  name: string;
  /** One value per x (seconds); NaN for none. */
  values: number[];
}

/** Per-second lines (left axis: throughput; right axis: latency) with event markers. */
export function timelineChart(
  title: string,
  subtitle: string,
  left: LineSeries[],
  right: LineSeries[],
  events: { atSec: number; label: string }[],
  leftUnit: string,
  rightUnit: string,
): string {
  const W = 980;
  const H = 400;
  const p = { x: 80, y: 70, w: 800, h: 260 };
  const n = Math.max(1, ...left.map((s) => s.values.length), ...right.map((s) => s.values.length));
  const lMax = niceMax(Math.max(0, ...left.flatMap((s) => s.values.filter(Number.isFinite))));
  const rMax = niceMax(Math.max(0, ...right.flatMap((s) => s.values.filter(Number.isFinite))));
  const xOf = (i: number) => p.x + (n <= 1 ? 0 : (i / (n - 1)) * p.w);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" font-size="11" fill="#555">${esc(subtitle)}</text>`);
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const y = p.y + p.h - f * p.h;
    out.push(`<line x1="${p.x}" y1="${y}" x2="${p.x + p.w}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${p.x - 6}" y="${y + 4}" text-anchor="end" font-size="11">${fmt(f * lMax)}${esc(leftUnit)}</text>`);
    out.push(`<text x="${p.x + p.w + 6}" y="${y + 4}" font-size="11">${fmt(f * rMax)}${esc(rightUnit)}</text>`);
  }
  const step = Math.max(1, Math.ceil(n / 20));
  for (let i = 0; i < n; i += step) out.push(`<text x="${xOf(i).toFixed(1)}" y="${p.y + p.h + 16}" text-anchor="middle" font-size="11">${i}s</text>`);
  events.forEach((e, i) => {
    const x = xOf(e.atSec);
    out.push(`<line x1="${x.toFixed(1)}" y1="${p.y}" x2="${x.toFixed(1)}" y2="${p.y + p.h}" stroke="#c00" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${(x + 4).toFixed(1)}" y="${p.y + 12 + 14 * i}" font-size="11" fill="#c00">${esc(e.label)}</text>`);
  });
  const line = (s: LineSeries, max: number, color: string, dash: string) => {
    const pts: string[] = [];
    s.values.forEach((v, i) => {
      if (Number.isFinite(v)) pts.push(`${xOf(i).toFixed(1)},${(p.y + p.h - (Math.min(v, max) / max) * p.h).toFixed(1)}`);
    });
    if (pts.length > 0) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ''} points="${pts.join(' ')}"/>`);
  };
  const all = [...left.map((s) => ({ s, max: lMax, dash: '' })), ...right.map((s) => ({ s, max: rMax, dash: '5 3' }))];
  all.forEach(({ s, max, dash }, i) => {
    const color = COLORS[i % COLORS.length]!;
    line(s, max, color, dash);
    const lx = p.x + i * 170;
    const ly = p.y + p.h + 40;
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 18}" y2="${ly - 4}" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ''}/>`);
    out.push(`<text x="${lx + 22}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
