/**
 * The dashboard's pure parts: markdown rendered safely (HTML in a report
 * stays text), escaping, the signatures table's filter and sort, bind and
 * token checks, and the sampled history.
 */
import { describe, expect, it } from 'vitest';
import { bindProblem, cookieValue, isLoopbackHost, tokenMatches } from '../../coordinator/dashboard/access.ts';
import { CountHistory } from '../../coordinator/dashboard/history.ts';
import { escapeHtml } from '../../coordinator/dashboard/html.ts';
import { renderMarkdown } from '../../coordinator/dashboard/markdown.ts';
import type { CampaignView, SignatureRow } from '../../coordinator/dashboard/read-model.ts';
import { applySignatureQuery, parseSignatureQuery } from '../../coordinator/dashboard/signature-query.ts';
import { emptyCounts } from '../../coordinator/farm/campaign-state.ts';

describe('markdown', () => {
  it('renders headings, lists, code and bold, and keeps HTML as text', () => {
    const html = renderMarkdown(
      [
        '# BUG: <script>alert(1)</script> in `loop_<b>queue</b>`',
        '',
        '> **Warning.** run <img src=x onerror=alert(1)> in a VM',
        '',
        '- **Signature:** `a-b-1`',
        '  - nested <i>item</i>',
        '- second',
        '',
        '```text',
        'op 1 <wrote> & "read"',
        '```',
        '',
        'a [link](javascript:alert(1)) and **bold <u>x</u>**',
      ].join('\n'),
    );
    expect(html).not.toMatch(/<script|<img|<b>|<i>|<u>|href=/);
    expect(html).toContain('<h2>BUG: &lt;script&gt;alert(1)&lt;/script&gt; in <code>loop_&lt;b&gt;queue&lt;/b&gt;</code></h2>');
    expect(html).toContain('<blockquote><strong>Warning.</strong> run &lt;img src=x onerror=alert(1)&gt; in a VM</blockquote>');
    expect(html).toContain('<ul><li><strong>Signature:</strong> <code>a-b-1</code><ul><li>nested &lt;i&gt;item&lt;/i&gt;</li></ul></li><li>second</li></ul>');
    expect(html).toContain('<pre data-lang="text"><code>op 1 &lt;wrote&gt; &amp; &quot;read&quot;</code></pre>');
    expect(html).toContain('<p>a [link](javascript:alert(1)) and <strong>bold &lt;u&gt;x&lt;/u&gt;</strong></p>');
  });

  it('escapes the five HTML characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });
});

function row(id: string, over: Partial<SignatureRow>): SignatureRow {
  return { id, title: id, class: 'wrong-data/garbage', source: 'model', outcome: 'divergence', status: 'new', count: 1, firstSeen: 1, lastSeen: 1, kernels: [], targets: [], minimized: false, files: [], ...over };
}

describe('signatures filter and sort', () => {
  const rows = [
    row('a-000000000001', { title: 'WARNING in blk_mq_start_request', class: 'warning', count: 5, lastSeen: 30, kernels: ['6.1.0-56-amd64'], minimized: true, reproRate: 1 }),
    row('b-000000000002', { title: 'wrong data from read via io_uring', count: 9, lastSeen: 10, kernels: ['6.12.0-1-amd64'], reproRate: 0.5 }),
    row('c-000000000003', { title: 'KASAN: use-after-free in bio_endio', class: 'kasan', status: 'fixed', count: 1, lastSeen: 20, kernels: ['6.1.0-56-amd64', '6.12.0-1-amd64'] }),
  ];
  const ids = (q: Record<string, string>) => applySignatureQuery(rows, parseSignatureQuery(q)).map((r) => r.id[0]).join('');

  it('defaults to last seen, newest first', () => expect(ids({})).toBe('acb'));
  it('sorts by any column, both ways', () => {
    expect(ids({ sort: 'count' })).toBe('bac');
    expect(ids({ sort: 'count', dir: 'asc' })).toBe('cab');
    expect(ids({ sort: 'title' })).toBe('cab');
    expect(ids({ sort: 'repro' })).toBe('abc');
    expect(ids({ sort: 'kernels' })).toBe('cab');
  });
  it('filters by words, class, status, kernel and minimized', () => {
    expect(ids({ q: 'IN BIO' })).toBe('c');
    expect(ids({ q: 'read io_uring' })).toBe('b');
    expect(ids({ class: 'kasan' })).toBe('c');
    expect(ids({ status: 'new' })).toBe('ab');
    expect(ids({ kernel: '6.12.0-1-amd64' })).toBe('cb');
    expect(ids({ minimized: 'yes' })).toBe('a');
    expect(ids({ minimized: 'no', kernel: '6.1.0-56-amd64' })).toBe('c');
  });
  it('ignores unknown sort keys and directions', () => expect(parseSignatureQuery({ sort: 'constructor', dir: 'up' })).toEqual({ sort: 'lastSeen', dir: 'desc' }));
});

describe('access checks', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.org', '127.0.0.1.example.org']) expect(isLoopbackHost(h), h).toBe(false);
  });
  it('refuses a public bind without a token and short tokens', () => {
    expect(bindProblem('127.0.0.1', undefined)).toBeUndefined();
    expect(bindProblem('0.0.0.0', undefined)).toMatch(/without a token/);
    expect(bindProblem('0.0.0.0', 'x'.repeat(15))).toMatch(/at least 16/);
    expect(bindProblem('0.0.0.0', 'x'.repeat(16))).toBeUndefined();
  });
  it('compares tokens exactly and reads one cookie', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abd', 'abc')).toBe(false);
    expect(tokenMatches('abcd', 'abc')).toBe(false);
    expect(tokenMatches(undefined, 'abc')).toBe(false);
    expect(cookieValue('a=1; blockfarm_dashboard_token=t%3Dx; b=2', 'blockfarm_dashboard_token')).toBe('t=x');
    expect(cookieValue('xblockfarm_dashboard_token=1', 'blockfarm_dashboard_token')).toBeUndefined();
  });
});

describe('count history', () => {
  const campaign = (executed: number, status: 'running' | 'finished' = 'running'): CampaignView => ({
    meta: { id: 'seed-1', seed: 1, targets: ['model'], budget: {}, status, createdAt: 0, elapsedMs: 0, coordinator: '', generator: '' },
    targets: [{ target: 'model', kernel: 'model', queue: 'exec-model', counts: { ...emptyCounts(), executed }, rate: 0, scenarios: {}, depth: { waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0, failed: 0 }, workers: 0, slots: 0 }],
    totals: emptyCounts(),
  });

  it('turns samples into rates and thins old samples instead of dropping them', () => {
    const h = new CountHistory({ maxSamples: 8 });
    for (let i = 0; i <= 20; i++) h.record([campaign(i * 50)], i * 5000);
    const pts = h.points('seed-1', 'model');
    expect(pts.length).toBeLessThanOrEqual(8);
    expect(pts[0]!.at).toBe(0);
    expect(pts[pts.length - 1]!.at).toBe(100_000);
    for (const p of pts.slice(1)) expect(p.execRate).toBeCloseTo(10, 5);
  });

  it('is seeded from the coordinator\'s stored history: the run before the dashboard started is drawn too', () => {
    const h = new CountHistory();
    h.record([campaign(1000)], 100_000);
    expect(h.needsSeed('seed-1')).toBe(true);
    const stored = [0, 10_000, 20_000, 100_000].map((at) => ({ at, targets: { model: { executed: at / 100, divergence: 0, crash: 0, hang: 0 } } }));
    h.seed('seed-1', stored);
    expect(h.needsSeed('seed-1')).toBe(false);
    const pts = h.points('seed-1', 'model');
    // The stored samples older than the first live one come first; the stored one at the same moment is not doubled.
    expect(pts.map((p) => p.at)).toEqual([0, 10_000, 20_000, 100_000]);
    expect(pts[1]!.execRate).toBeCloseTo(10, 5);
    expect(pts[3]!.executed).toBe(1000);
  });

  it('stops sampling a finished campaign that does not change', () => {
    const h = new CountHistory();
    h.record([campaign(10, 'finished')], 1000);
    h.record([campaign(10, 'finished')], 2000);
    expect(h.points('seed-1', 'model')).toHaveLength(1);
  });
});
