/**
 * The pages' bodies, rendered on the server from the read model's views.
 * Each function returns the HTML inside #live (the frame is html.ts page()),
 * so the live refresh can fetch the same body again and swap it in.
 */
import { execQueueName } from '../../worker/farm/protocol.ts';
import type { CountHistory } from './history.ts';
import { type ChartSeries, cards, duration, escapeHtml, iso, lineChart, num, pct, seg, table } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import { type CampaignView, type FindingTime, type KernelView, type Overview, QUEUE_STATES, type SignatureDetail, type SignatureRow, type WorkerView } from './read-model.ts';
import { type SignatureQuery, type SortKey, queryString } from './signature-query.ts';

function sigLink(r: Pick<SignatureRow, 'id' | 'title'>): string {
  return `<a href="/signatures/${seg(r.id)}">${escapeHtml(r.title)}</a>`;
}

function kernelLinks(ks: string[]): string {
  return ks.map((k) => `<a href="/kernels/${seg(k)}">${escapeHtml(k)}</a>`).join(', ') || '-';
}

function statusPill(s: string): string {
  return `<span class="pill ${escapeHtml(s)}">${escapeHtml(s)}</span>`;
}

function beatAge(w: WorkerView): string {
  const s = Math.round(w.beatAgeMs / 1000);
  return `<span class="${w.alive ? 'ok' : 'bad'}">${s} s ago</span>`;
}

function targetsTable(c: CampaignView): string {
  return table(
    ['target', 'kernel', 'executed', 'execs/s', 'pass', 'divergences', 'crashes', 'hangs', 'unsupported', 'infra errors', 'queued', 'running', 'workers (slots)'],
    c.targets.map((t) => [
      escapeHtml(t.target),
      `<a href="/kernels/${seg(t.kernel)}">${escapeHtml(t.kernel)}</a>`,
      num(t.counts.executed),
      num(t.rate, 1),
      num(t.counts.pass),
      t.counts.divergence ? `<span class="bad">${num(t.counts.divergence)}</span>` : '0',
      t.counts.crash ? `<span class="bad">${num(t.counts.crash)}</span>` : '0',
      t.counts.hang ? `<span class="bad">${num(t.counts.hang)}</span>` : '0',
      num(t.counts.unsupported),
      num(t.counts.infraError + t.counts.failed + t.counts.lost),
      num(t.depth.waiting + t.depth.prioritized + t.depth.delayed),
      num(t.depth.active),
      `${t.workers} (${t.slots})`,
    ]),
    { numeric: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11] },
  );
}

function charts(c: CampaignView, history: CountHistory, findings: FindingTime[], now: number): string {
  const pts = history.campaign(c);
  const rate: ChartSeries[] = c.targets.map((t) => ({ name: t.target, points: (pts[t.target] ?? []).slice(1).map((p) => [p.at, p.execRate]) }));
  const sampled = rate.some((s) => s.points.length >= 2);
  const avg = c.meta.elapsedMs > 0 ? (1000 * c.totals.executed) / c.meta.elapsedMs : 0;
  const rateChart = sampled
    ? lineChart('Executions per second', rate, { unit: 'cases/s per target' })
    : `<div class="chart"><h3>Executions per second</h3><p class="muted">${c.meta.status === 'finished' ? `The campaign has finished: ${num(avg, 1)} cases/s on average over its ${duration(c.meta.elapsedMs)}.` : 'collecting samples (the chart fills while the dashboard runs)'}</p></div>`;
  // Findings from their files: cumulative steps from the campaign's start to its end (or now).
  const start = c.meta.createdAt;
  const end = Math.max(c.meta.finishedAt ?? now, ...findings.map((f) => f.at));
  const steps = (kind: FindingTime['kind']): Array<[number, number]> => {
    const out: Array<[number, number]> = [[start, 0]];
    let n = 0;
    for (const f of findings) if (f.kind === kind) out.push([f.at, n], [f.at, ++n]);
    out.push([end, n]);
    return out;
  };
  const findingsChart = lineChart(
    'Divergences and crashes over time',
    [
      { name: 'divergences', points: steps('divergence') },
      { name: 'crashes', points: steps('crash') },
      { name: 'hangs', points: steps('hang') },
    ],
    { unit: 'cumulative, from the finding files' },
  );
  return `<div class="charts">${rateChart}${findingsChart}</div>`;
}

/** The campaign the overview shows: the one asked for, else the running one, else the newest. */
export function shownCampaign(o: Overview, campaignId?: string): CampaignView | undefined {
  return o.campaigns.find((x) => x.meta.id === campaignId) ?? o.campaigns.find((x) => x.meta.status === 'running') ?? o.campaigns[0];
}

export function overviewBody(o: Overview, history: CountHistory, findings: FindingTime[], campaignId?: string): string {
  const c = shownCampaign(o, campaignId);
  const alive = o.workers.filter((w) => w.alive);
  const parts: string[] = [];
  if (!c) parts.push(`<p class="muted">No campaign in namespace ${escapeHtml(o.namespace)} yet. Start one with <code>blockfarm campaign</code> or <code>blockfarm coordinator</code>.</p>`);
  else {
    const b = c.meta.budget;
    parts.push(
      `<p>Campaign <b>${escapeHtml(c.meta.id)}</b> (seed ${c.meta.seed}) is <b>${escapeHtml(c.meta.status)}</b>; running for ${duration(c.meta.elapsedMs)}${b.durationMs ? ` of ${duration(b.durationMs)}` : ''}${b.cases ? `, budget ${num(b.cases)} cases per target` : ''}; generator ${escapeHtml(c.meta.generator)}; started ${iso(c.meta.createdAt)}.</p>`,
      cards([
        ['cases executed', num(c.totals.executed)],
        ['execs/s now', num(c.totals.rate, 1)],
        ['divergences', num(c.totals.divergence)],
        ['crashes', num(c.totals.crash)],
        ['hangs', num(c.totals.hang)],
        ['signatures', `<a href="/signatures">${num(o.signatures.total)}</a>`],
        ['minimized', num(o.signatures.minimized)],
        ['corpus size', num(o.corpusSize)],
        ['workers alive', `<a href="/workers">${num(alive.length)}</a>`],
      ]),
      '<h2>Targets</h2>',
      targetsTable(c),
      charts(c, history, findings, o.at),
    );
  }
  parts.push(
    '<h2>Workers alive</h2>',
    table(
      ['worker', 'host', 'targets', 'slots', 'last heartbeat'],
      alive.map((w) => [`<a href="/workers/${seg(w.id)}">${escapeHtml(w.id)}</a>`, escapeHtml(w.host), escapeHtml(w.targets.join(', ')), String(w.concurrency), `${beatAge(w)} <span class="muted">${iso(w.beatAt)}</span>`]),
      { numeric: [3], empty: 'no live worker' },
    ),
    '<h2>Queue depths</h2>',
    table(
      ['queue', ...QUEUE_STATES],
      o.queues.map((q) => [`<a href="/queues/queue/${seg(q.name)}">${escapeHtml(q.name)}</a>`, ...QUEUE_STATES.map((s) => num(q.counts[s]))]),
      { numeric: QUEUE_STATES.map((_, i) => i + 1) },
    ),
    '<h2>Kernels</h2>',
    `<p>${kernelLinks(o.kernels)}</p>`,
  );
  if (o.campaigns.length > 1 || (c && c !== o.campaigns[0])) {
    parts.push(
      '<h2>Campaigns</h2>',
      table(
        ['campaign', 'status', 'targets', 'executed', 'divergences', 'crashes', 'hangs', 'started', 'running time'],
        o.campaigns.map((x) => [
          `<a href="/?campaign=${seg(x.meta.id)}">${escapeHtml(x.meta.id)}</a>`,
          escapeHtml(x.meta.status),
          escapeHtml(x.meta.targets.join(', ')),
          num(x.totals.executed),
          num(x.totals.divergence),
          num(x.totals.crash),
          num(x.totals.hang),
          iso(x.meta.createdAt),
          duration(x.meta.elapsedMs),
        ]),
        { numeric: [3, 4, 5, 6] },
      ),
    );
  }
  parts.push(`<p class="muted">namespace ${escapeHtml(o.namespace)} · data ${escapeHtml(o.dataDir)} · ${iso(o.at)}</p>`);
  return parts.join('\n');
}

export function signaturesBody(rows: SignatureRow[], all: SignatureRow[], q: SignatureQuery): string {
  const classes = [...new Set(all.map((r) => r.class))].sort();
  const statuses = [...new Set(all.map((r) => r.status))].sort();
  const kernels = [...new Set(all.flatMap((r) => r.kernels))].sort();
  const opt = (v: string, cur: string | undefined) => `<option value="${escapeHtml(v)}"${v === cur ? ' selected' : ''}>${escapeHtml(v || 'any')}</option>`;
  const form = `<form class="filter" method="get" action="/signatures">
<input type="search" name="q" placeholder="filter: words in the title or id" value="${escapeHtml(q.q ?? '')}" size="32">
<label>class <select name="class">${['', ...classes].map((v) => opt(v, q.class)).join('')}</select></label>
<label>status <select name="status">${['', ...statuses].map((v) => opt(v, q.status)).join('')}</select></label>
<label>kernel <select name="kernel">${['', ...kernels].map((v) => opt(v, q.kernel)).join('')}</select></label>
<label>minimized <select name="minimized">${['', 'yes', 'no'].map((v) => opt(v, q.minimized)).join('')}</select></label>
<input type="hidden" name="sort" value="${escapeHtml(q.sort)}"><input type="hidden" name="dir" value="${escapeHtml(q.dir)}">
<button type="submit">apply</button> <a href="/signatures">clear</a></form>`;
  const col = (key: SortKey, label: string, numeric = false) => {
    const dir = q.sort === key ? (q.dir === 'asc' ? 'desc' : 'asc') : key === 'title' || key === 'class' ? 'asc' : 'desc';
    const mark = q.sort === key ? (q.dir === 'asc' ? ' ▲' : ' ▼') : '';
    return { html: `<a href="/signatures?${escapeHtml(queryString(q, { sort: key, dir }))}">${escapeHtml(label)}${mark}</a>`, cls: numeric ? 'n' : '' };
  };
  return `${form}
<p class="muted">${rows.length} of ${all.length} signature${all.length === 1 ? '' : 's'}</p>
${table(
  [col('title', 'title'), col('class', 'class'), col('status', 'status'), col('count', 'count', true), col('firstSeen', 'first seen'), col('lastSeen', 'last seen'), col('kernels', 'kernels'), col('repro', 'repro rate', true), col('minimized', 'minimized')],
  rows.map((r) => [
    sigLink(r),
    escapeHtml(r.class),
    statusPill(r.status),
    num(r.count),
    iso(r.firstSeen),
    iso(r.lastSeen),
    kernelLinks(r.kernels),
    r.reproRate !== undefined ? `${pct(r.reproRate)} <span class="muted">of ${r.reproRuns}</span>` : '-',
    r.minimized ? 'yes' : 'no',
  ]),
  { numeric: [3, 7], empty: all.length ? 'no signature matches the filter' : 'no signature filed yet' },
)}`;
}

function expectationTable(d: SignatureDetail): string {
  const o = d.report?.outcome;
  if (!o) return '<p class="muted">No run of the case is on record with this report.</p>';
  if (o.kind !== 'divergence' || !o.divergences?.length)
    return `<p>The kernel ${o.kind === 'crash' ? 'crashed' : o.kind === 'hang' ? 'hung' : escapeHtml(o.kind)}${o.title ? `: <code>${escapeHtml(o.title)}</code>` : ''}${o.target ? ` (on ${escapeHtml(o.target)})` : ''}. The model expected every op to complete within its allowed outcomes.</p>`;
  return table(
    ['op', 'object', 'offset', 'class', 'the model allowed', 'the kernel did'],
    o.divergences.slice(0, 50).map((x) => [
      x.op !== undefined ? `${x.op}${x.opKind ? ` <span class="muted">${escapeHtml(x.opKind)}${x.thread !== undefined ? ` t${x.thread}` : ''}</span>` : ''}` : '-',
      escapeHtml(x.object ?? '-'),
      x.offset !== undefined ? escapeHtml(String(x.offset)) : '-',
      escapeHtml(x.dataClass ? `${x.class}/${x.dataClass}` : x.class),
      `<code>${escapeHtml(x.expected)}</code>${x.expectedWriters?.length ? ` <span class="muted">(op ${escapeHtml(x.expectedWriters.join(', '))})</span>` : ''}`,
      `<code class="bad">${escapeHtml(x.observed)}</code>${x.observedWriter !== undefined ? ` <span class="muted">(from op ${x.observedWriter})</span>` : ''}`,
    ]),
    { numeric: [2] },
  );
}

export function signatureBody(d: SignatureDetail): string {
  const r = d.row;
  const rec = d.record;
  const dl = (f: string, label: string) => (r.files.includes(f as never) ? `<a href="/signatures/${seg(r.id)}/files/${f}" download>${escapeHtml(label)}</a>` : '');
  const downloads = [dl('repro.sh', 'repro.sh'), dl('repro.c', 'repro.c'), dl('case.json', 'case JSON'), dl('minimized.json', 'minimized case JSON'), dl('console.log', 'console.log'), dl('report.json', 'report.json'), dl('report.md', 'report.md')].filter(Boolean);
  const parts = [
    cards([
      ['class', escapeHtml(r.class)],
      ['status', statusPill(r.status)],
      ['occurrences', num(r.count)],
      ['reproduction', r.reproRate !== undefined ? `${pct(r.reproRate)} <span class="muted">of ${r.reproRuns}</span>` : '-'],
      ['minimized', r.minimized ? 'yes' : 'no'],
    ]),
    `<p><code>${escapeHtml(r.id)}</code> · first seen ${iso(r.firstSeen)} · last seen ${iso(r.lastSeen)} · kernels ${kernelLinks(r.kernels)} · targets ${escapeHtml(r.targets.join(', ') || '-')}${rec.first.campaign ? ` · first in campaign ${escapeHtml(rec.first.campaign)}${rec.first.caseId ? `, case ${escapeHtml(rec.first.caseId)}` : ''}` : ''}</p>`,
    `<p class="downloads"><b>Downloads:</b> ${downloads.join(' ') || '<span class="muted">none yet</span>'}</p>`,
    d.report?.reproUnsupported ? `<p class="warn">No standalone reproducer: ${escapeHtml(d.report.reproUnsupported)}.</p>` : '',
    d.consoleExcerpt !== undefined ? '<div class="side"><div>' : '<div>',
    '<h2>What the model allowed and what the kernel did</h2>',
    expectationTable(d),
    `<h2>The ${d.caseRole === 'minimized' ? 'minimized ' : ''}case</h2>`,
    d.caseText ? `<pre>${escapeHtml(d.caseText)}</pre>` : d.caseJson ? `<pre>${escapeHtml(JSON.stringify(d.caseJson, null, 2))}</pre>` : '<p class="muted">no case on record</p>',
    d.consoleExcerpt !== undefined ? '</div><div>' : '',
    '<h2>Console / kernel log</h2>',
    d.consoleExcerpt !== undefined
      ? `<pre>${escapeHtml(d.consoleExcerpt)}</pre>${(d.consoleLines ?? 0) > 200 ? `<p class="muted">first 200 of ${d.consoleLines} lines; the whole log: <a href="/signatures/${seg(r.id)}/files/console.log">console.log</a></p>` : ''}`
      : `<p class="muted">${r.source === 'model' ? 'none kept: the kernel logged nothing with this divergence' : 'no console log kept with this report'}</p>`,
    d.consoleExcerpt !== undefined ? '</div></div>' : '</div>',
    '<h2>Report</h2>',
    d.reportMarkdown !== undefined ? `<div class="report">${renderMarkdown(d.reportMarkdown)}</div>` : '<p class="muted">no report.md written yet (triage writes it after minimizing)</p>',
  ];
  return parts.join('\n');
}

export function kernelsBody(o: Overview, rows: SignatureRow[]): string {
  const byKernel = new Map<string, { targets: Set<string>; executed: number; findings: number }>();
  for (const k of o.kernels) byKernel.set(k, { targets: new Set(), executed: 0, findings: 0 });
  for (const c of o.campaigns)
    for (const t of c.targets) {
      const e = byKernel.get(t.kernel)!;
      e.targets.add(t.target);
      e.executed += t.counts.executed;
      e.findings += t.counts.divergence + t.counts.crash + t.counts.hang;
    }
  return table(
    ['kernel', 'targets', 'cases executed', 'findings', 'signatures'],
    [...byKernel].map(([k, e]) => [`<a href="/kernels/${seg(k)}">${escapeHtml(k)}</a>`, escapeHtml([...e.targets].join(', ') || '-'), num(e.executed), num(e.findings), num(rows.filter((r) => r.kernels.includes(k)).length)]),
    { numeric: [2, 3, 4], empty: 'no kernel seen yet' },
  );
}

export function kernelBody(k: KernelView): string {
  return `${cards([
    ['cases executed', num(k.executed)],
    ['findings', num(k.findings)],
    ['signatures', num(k.signatures.length)],
  ])}
<p>targets: ${escapeHtml(k.targets.join(', ') || '-')}</p>
<h2>Signatures seen on ${escapeHtml(k.name)}</h2>
${table(
  ['title', 'class', 'status', 'count', 'first seen', 'last seen', 'repro rate', 'minimized'],
  k.signatures.map((r) => [sigLink(r), escapeHtml(r.class), statusPill(r.status), num(r.count), iso(r.firstSeen), iso(r.lastSeen), pct(r.reproRate), r.minimized ? 'yes' : 'no']),
  { numeric: [3, 6], empty: 'none on this kernel' },
)}`;
}

export function workersBody(ws: WorkerView[]): string {
  return table(
    ['worker', 'state', 'host', 'pid', 'targets', 'slots', 'started', 'last heartbeat'],
    ws.map((w) => [
      `<a href="/workers/${seg(w.id)}">${escapeHtml(w.id)}</a>`,
      w.alive ? '<span class="ok">alive</span>' : '<span class="bad">gone</span>',
      escapeHtml(w.host || '-'),
      w.pid ? String(w.pid) : '-',
      escapeHtml(w.targets.join(', ') || '-'),
      w.concurrency ? String(w.concurrency) : '-',
      iso(w.startedAt),
      `${beatAge(w)} <span class="muted">${iso(w.beatAt)}</span>`,
    ]),
    { numeric: [3, 5], empty: 'no worker has registered in this namespace' },
  );
}

export function workerBody(w: WorkerView, findings: Array<FindingTime & { campaign: string }>, known: Set<string>): string {
  return `${cards([
    ['state', w.alive ? '<span class="ok">alive</span>' : '<span class="bad">gone</span>'],
    ['last heartbeat', `${Math.round(w.beatAgeMs / 1000)} s ago`],
    ['batch slots', String(w.concurrency || '-')],
    ['up for', w.startedAt ? duration(w.beatAt - w.startedAt) : '-'],
    ['findings reported', num(findings.length)],
  ])}
${table(
  ['field', 'value'],
  [
    ['id', escapeHtml(w.id)],
    ['host', escapeHtml(w.host || '-')],
    ['pid', w.pid ? String(w.pid) : '-'],
    ['targets', w.targets.map((t) => `<a href="/queues/queue/${seg(execQueueName(t))}">${escapeHtml(t)}</a>`).join(', ') || '-'],
    ['started', iso(w.startedAt)],
    ['last heartbeat', iso(w.beatAt)],
    ['protocol version', w.version ? String(w.version) : '-'],
  ],
)}
<p class="muted">A worker beats every 5 s; one silent for 15 s is gone (its batches return to the queue when their locks lapse).</p>
<h2>Findings it reported</h2>
${table(
  ['time', 'campaign', 'target', 'kind', 'signature'],
  findings.map((f) => [
    iso(f.at),
    escapeHtml(f.campaign),
    escapeHtml(f.target),
    escapeHtml(f.kind),
    f.signature ? (known.has(f.signature) ? `<a href="/signatures/${seg(f.signature)}">${escapeHtml(f.signature)}</a>` : `<code>${escapeHtml(f.signature)}</code>`) : '-',
  ]),
  { empty: 'none in the newest campaigns' },
)}`;
}
