/**
 * HTML building blocks of the dashboard pages: escaping, the page frame
 * (inline CSS, no fonts or scripts from elsewhere: the pages work offline),
 * tables, durations and times, and SVG line charts drawn on the server.
 * Every value that reaches a page goes through escapeHtml (or attr).
 */

export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A URL path segment (ids are [a-z0-9-] already; this keeps anything else inert). */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

export function iso(ms: number | undefined): string {
  if (!ms) return '-';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function num(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function pct(x: number | undefined): string {
  return x === undefined ? '-' : `${Math.round(100 * x)}%`;
}

const CSS = `
:root{--fg:#1d2330;--muted:#5b6475;--line:#d8dce4;--bg:#f6f7f9;--card:#fff;--accent:#2456a6;--bad:#b3261e;--warn:#9a6700;--ok:#1a7f37}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:8px 20px;display:flex;gap:20px;align-items:center;flex-wrap:wrap}
header b{font-size:16px;margin-right:10px}
header a{color:#cfd8ea;text-decoration:none}header a:hover,header a.on{color:#fff;text-decoration:underline}
main{max-width:1400px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:22px 0 8px}h3{font-size:14px;margin:16px 0 6px}
a{color:var(--accent)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin:8px 0 16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.card .v{font-size:20px;font-weight:600}.card .k{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);margin:6px 0 12px}
th,td{padding:4px 7px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600;white-space:nowrap}th a{color:inherit}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr:hover td{background:#fafbfd}
code,pre{font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
pre{background:#f0f2f5;border:1px solid var(--line);border-radius:4px;padding:8px 10px;overflow:auto;max-height:560px}
.muted{color:var(--muted)}.bad{color:var(--bad);font-weight:600}.ok{color:var(--ok)}.warn{color:var(--warn)}
.pill{display:inline-block;padding:0 6px;border-radius:9px;background:#e6e9ef;font-size:12px}
.pill.new{background:#fde2e1}.pill.reported{background:#fff0c2}.pill.fixed{background:#d5f0dc}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}
.chart{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px}
.chart svg{width:100%;height:auto;display:block}
.legend span{margin-right:12px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.side{display:grid;grid-template-columns:1fr 1fr;gap:12px}.side>div{min-width:0}
@media (max-width:900px){.side{grid-template-columns:1fr}}
form.filter{display:flex;gap:8px;flex-wrap:wrap;align-items:center;margin:6px 0}
form.filter input,form.filter select{padding:4px 6px;border:1px solid var(--line);border-radius:4px;font:inherit}
.report h2{font-size:15px}.report blockquote{border-left:3px solid var(--warn);margin:8px 0;padding:4px 10px;background:#fff8e6}
.downloads a{margin-right:14px}
.wide{overflow-x:auto}
#live-status{margin-left:auto;font-size:12px;color:#9fb0cc}
`;

export interface PageOptions {
  title: string;
  /** Which nav entry is current. */
  nav?: 'overview' | 'signatures' | 'kernels' | 'workers' | 'queues';
  body: string;
  /** A fragment URL that live.js polls to replace the element #live (no reload). */
  liveUrl?: string;
}

export function page(o: PageOptions): string {
  const link = (href: string, label: string, key: PageOptions['nav']) => `<a href="${href}"${o.nav === key ? ' class="on"' : ''}>${label}</a>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(o.title)} · blockfarm</title>
<style>${CSS}</style>
<script src="/static/live.js" defer></script>
</head><body>
<header><b>blockfarm</b>${link('/', 'Overview', 'overview')}${link('/signatures', 'Signatures', 'signatures')}${link('/kernels', 'Kernels', 'kernels')}${link('/workers', 'Workers', 'workers')}${link('/queues/', 'Queues', 'queues')}<a href="/metrics">Metrics</a><a href="/api">API</a><span id="live-status"></span></header>
<main><h1>${escapeHtml(o.title)}</h1>
<div id="live"${o.liveUrl ? ` data-live="${escapeHtml(o.liveUrl)}"` : ''}>${o.body}</div>
</main></body></html>
`;
}

export function table(head: Array<string | { html: string; cls?: string }>, rows: string[][], opts: { numeric?: number[]; empty?: string } = {}): string {
  if (!rows.length) return `<p class="muted">${escapeHtml(opts.empty ?? 'nothing yet')}</p>`;
  const n = new Set(opts.numeric ?? []);
  const th = head.map((h, i) => (typeof h === 'string' ? `<th${n.has(i) ? ' class="n"' : ''}>${escapeHtml(h)}</th>` : `<th class="${h.cls ?? (n.has(i) ? 'n' : '')}">${h.html}</th>`)).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${n.has(i) ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`).join('\n');
  return `<div class="wide"><table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

export function cards(items: Array<[string, string]>): string {
  return `<div class="cards">${items.map(([k, v]) => `<div class="card"><div class="v">${v}</div><div class="k">${escapeHtml(k)}</div></div>`).join('')}</div>`;
}

export const PALETTE = ['#2456a6', '#b3261e', '#1a7f37', '#9a6700', '#7b3fa0', '#0f7c8a', '#c2410c', '#4b5563'];

export interface ChartSeries {
  name: string;
  points: Array<[number, number]>;
}

/** A line chart (x: time in ms, y: value) as inline SVG, with axes, a legend and no script. */
export function lineChart(title: string, series: ChartSeries[], opts: { unit?: string; width?: number; height?: number } = {}): string {
  const W = opts.width ?? 560;
  const H = opts.height ?? 200;
  const L = 48;
  const R = 10;
  const T = 10;
  const B = 24;
  const all = series.flatMap((s) => s.points);
  const legend = `<div class="legend">${series.map((s, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${escapeHtml(s.name)}</span>`).join('')}</div>`;
  if (all.length < 2) return `<div class="chart"><h3>${escapeHtml(title)}</h3><p class="muted">collecting samples (the chart fills while the dashboard runs)</p>${legend}</div>`;
  const x0 = Math.min(...all.map((p) => p[0]));
  const x1 = Math.max(...all.map((p) => p[0]), x0 + 1000);
  const ymax = Math.max(1, ...all.map((p) => p[1])) * 1.1;
  const X = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y: number) => T + (1 - y / ymax) * (H - T - B);
  const grid: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const y = (ymax * k) / 4;
    grid.push(`<line x1="${L}" x2="${W - R}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#e3e6ec"/><text x="${L - 4}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end" font-size="10" fill="#5b6475">${escapeHtml(num(y, y < 10 ? 1 : 0))}</text>`);
  }
  const span = x1 - x0;
  for (let k = 0; k <= 4; k++) {
    const x = x0 + (span * k) / 4;
    grid.push(`<text x="${X(x).toFixed(1)}" y="${H - 6}" text-anchor="middle" font-size="10" fill="#5b6475">${escapeHtml(new Date(x).toISOString().slice(11, 19))}</text>`);
  }
  const lines = series.map((s, i) => {
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
    return s.points.length ? `<path d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.8"/>` : '';
  });
  return `<div class="chart"><h3>${escapeHtml(title)}${opts.unit ? ` <span class="muted">(${escapeHtml(opts.unit)})</span>` : ''}</h3>
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(title)}">${grid.join('')}<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#9aa3b2"/>${lines.join('')}</svg>${legend}</div>`;
}
