/**
 * The dashboard's JSON API, /metrics, file downloads and the queue UI
 * against a real Redis holding a small real campaign (helpers/fixture.ts),
 * checked against what the farm wrote (the Redis counts, the finding files,
 * the report folders). Also: path traversal gets 404, nothing but GET is
 * served, and serving every page leaves Redis exactly as it was.
 */
import { readFileSync, readdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DashboardServer } from '../../coordinator/dashboard/server.ts';
import { FarmReadModel } from '../../coordinator/dashboard/read-model.ts';
import { signatureBody } from '../../coordinator/dashboard/pages.ts';
import { DirSignatureStore, fileFinding, signatureDir, signaturesRoot, writeReport } from '../../coordinator/triage/index.ts';
import { ROOT, killAll, quietLog, redisClient, removeDir, tempDir } from '../farm/helpers/farm.ts';
import { CORRUPT, type CampaignFixture, smallCampaign } from './helpers/fixture.ts';

let fx: CampaignFixture;
let server: DashboardServer;
let base: string;
let client: Redis;

beforeAll(async () => {
  fx = await smallCampaign('dash-api', { seed: 12, probeEmbeddedDashboard: true });
  client = redisClient(fx.redis.url);
  server = new DashboardServer({ redisUrl: fx.redis.url, dataDir: fx.dataDir, namespace: fx.namespace, port: 0, log: quietLog(), sampleEveryMs: 500 });
  base = await server.start();
}, 240_000);

afterAll(async () => {
  await server?.close();
  client?.disconnect();
  await killAll();
  await fx?.cleanup();
});

async function get(path: string, init?: RequestInit): Promise<Response> {
  return fetch(`${base}${path}`, { redirect: 'manual', ...init });
}

async function json<T = any>(path: string): Promise<T> {
  const r = await get(path);
  expect(r.status, path).toBe(200);
  return (await r.json()) as T;
}

function findingFiles(): string[] {
  return readdirSync(join(fx.dataDir, 'divergences', fx.campaign, 'testonly_corrupt-model')).filter((f) => /^[0-9a-f]{16}\.json$/.test(f));
}

describe('the JSON API on a small real campaign', () => {
  it('the campaign served its own dashboard while it ran (--dashboard), and stopped it at the end', async () => {
    const c = fx.embedded!.campaigns.find((x) => x.meta.id === fx.campaign)!;
    expect(c.meta.status).toBe('running');
    // Its local workers, one per target, alive with a recent heartbeat, each with its page.
    const alive = fx.embedded!.workers.filter((w) => w.alive);
    expect(alive.flatMap((w) => w.targets).sort()).toEqual(['model', CORRUPT]);
    expect(alive.every((w) => w.beatAgeMs < 15_000)).toBe(true);
    expect(fx.embedded!.workerPages.every((s) => s === 200)).toBe(true);
    await expect(fetch(`${fx.embedded!.url}/api/overview`)).rejects.toThrow();
  });

  it('overview: the campaign, its targets and counts as the farm keeps them', async () => {
    const o = await json('/api/overview');
    expect(o.namespace).toBe(fx.namespace);
    const c = o.campaigns.find((x: any) => x.meta.id === fx.campaign);
    expect(c.meta.status).toBe('finished');
    const model = c.targets.find((t: any) => t.target === 'model');
    const corrupt = c.targets.find((t: any) => t.target === CORRUPT);
    expect(model.counts.executed).toBe(48);
    expect(model.counts.divergence).toBe(0);
    expect(corrupt.counts.executed).toBe(48);
    // Every divergence counted in Redis has its finding file, and the other way round.
    expect(corrupt.counts.divergence).toBeGreaterThan(0);
    expect(corrupt.counts.divergence).toBe(findingFiles().length);
    expect(c.totals.executed).toBe(96);
    expect(o.corpusSize).toBe(await client.zcard(`${fx.namespace}:corpus`));
    // The exec queues first; triage's queue(s) after them.
    expect(o.queues.map((q: any) => q.name).slice(0, 3)).toEqual(['exec-model', 'exec-testonly_corrupt-model', 'triage']);
    expect(o.signatures.total).toBeGreaterThanOrEqual(1);
    expect(o.signatures.minimized).toBeGreaterThanOrEqual(1);
  });

  it('campaign: the finding times come from the finding files', async () => {
    const c = await json(`/api/campaigns/${fx.campaign}`);
    expect(c.findings.length).toBe(findingFiles().length);
    expect(c.findings.every((f: any) => f.kind === 'divergence' && f.target === CORRUPT)).toBe(true);
    // Who found it and under which signature, as the coordinator wrote it in each record.
    const records = findingFiles().map((f) => JSON.parse(readFileSync(join(fx.dataDir, 'divergences', fx.campaign, 'testonly_corrupt-model', f), 'utf8')));
    expect(c.findings.map((f: any) => `${f.worker} ${f.signature}`).sort()).toEqual(records.map((r: any) => `${r.worker} ${r.signature}`).sort());
    expect((await get('/api/campaigns/seed-999999')).status).toBe(404);
  });

  it('signatures: the triaged signature with its files, filter and sort', async () => {
    const all = await json('/api/signatures');
    const row = all.signatures.find((r: any) => r.id === fx.signature);
    expect(row).toBeDefined();
    expect(row.minimized).toBe(true);
    expect(row.files).toEqual(expect.arrayContaining(['report.md', 'report.json', 'repro.sh', 'repro.c', 'case.json', 'minimized.json']));
    expect(row.kernels).toEqual([CORRUPT]);
    expect(row.reproRate).toBeGreaterThan(0);
    // What is on disk: one row per signature folder with a record.
    const folders = readdirSync(signaturesRoot(fx.dataDir)).filter((d) => readdirSync(join(signaturesRoot(fx.dataDir), d)).includes('signature.json'));
    expect(all.signatures.map((r: any) => r.id).sort()).toEqual(folders.sort());

    const none = await json('/api/signatures?q=no-such-words-anywhere');
    expect(none.signatures).toEqual([]);
    const byId = await json(`/api/signatures?q=${fx.signature.slice(-12)}`);
    expect(byId.signatures.map((r: any) => r.id)).toEqual([fx.signature]);
    const minimizedOnly = await json('/api/signatures?minimized=yes');
    expect(minimizedOnly.signatures.every((r: any) => r.minimized)).toBe(true);
    const byCount = await json('/api/signatures?sort=count&dir=asc');
    const counts = byCount.signatures.map((r: any) => r.count);
    expect(counts).toEqual([...counts].sort((a: number, b: number) => a - b));
  });

  it('one signature: record, report, the minimized case, the model beside the kernel', async () => {
    const d = await json(`/api/signatures/${fx.signature}`);
    expect(d.record.id).toBe(fx.signature);
    expect(d.caseRole).toBe('minimized');
    expect(d.case.program.threads.length).toBeGreaterThan(0);
    expect(d.caseText).toContain('stack (bottom-up)');
    const div = d.report.outcome.divergences[0];
    expect(div.observed).toBe('bytes no op wrote');
    expect(typeof div.expected).toBe('string');
    expect(d.files['repro.c']).toBe(`/signatures/${fx.signature}/files/repro.c`);
    expect((await get('/api/signatures/wrong-data-nothing-000000000000')).status).toBe(404);
  });

  it('downloads are the files triage wrote, byte for byte', async () => {
    const dir = join(signaturesRoot(fx.dataDir), fx.signature);
    for (const f of ['repro.c', 'repro.sh', 'case.json', 'minimized.json', 'report.md']) {
      const r = await get(`/signatures/${fx.signature}/files/${f}`);
      expect(r.status, f).toBe(200);
      expect(r.headers.get('content-disposition')).toBe(`attachment; filename="${fx.signature}-${f}"`);
      expect(await r.text()).toBe(readFileSync(join(dir, f), 'utf8'));
    }
  });

  it('kernels and workers', async () => {
    const k = await json(`/api/kernels/${encodeURIComponent(CORRUPT)}`);
    expect(k.signatures.map((s: any) => s.id)).toContain(fx.signature);
    expect(k.executed).toBe(48);
    expect((await get('/api/kernels/6.1.0-nope-amd64')).status).toBe(404);
    // The campaign's local workers stopped with it: none is alive.
    const ws = await json('/api/workers');
    expect(ws.filter((w: any) => w.alive)).toEqual([]);
  });

  it('/metrics: the same numbers in Prometheus format', async () => {
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    const text = await r.text();
    const value = (name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('blockfarm_cases_executed', `campaign="${fx.campaign}",target="model",kernel="model"`)).toBe(48);
    expect(value('blockfarm_findings', `campaign="${fx.campaign}",target="${CORRUPT}",kernel="${CORRUPT}",kind="divergence"`)).toBe(findingFiles().length);
    expect(text).toMatch(/^blockfarm_queue_jobs\{queue="triage",state="waiting"\} 0$/m);
    expect(text).toMatch(/^blockfarm_workers_alive 0$/m);
    expect(text).toMatch(/^blockfarm_execs_per_second\{/m);
    expect(value('blockfarm_signatures_minimized', '')).toBeNaN(); // no labels: matched below
    expect(Number(/^blockfarm_signatures_minimized (\S+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^blockfarm_minimization_progress (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
  });

  it('pages render, escaped, and the queue UI lists every queue without asking other sites for fonts', async () => {
    for (const p of ['/', '/signatures', `/signatures/${fx.signature}`, '/kernels', `/kernels/${encodeURIComponent(CORRUPT)}`, '/workers']) {
      const r = await get(p);
      expect(r.status, p).toBe(200);
      const html = await r.text();
      expect(html, p).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
      expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
    }
    const ui = await get('/queues/');
    expect(ui.status).toBe(200);
    expect(await ui.text()).not.toContain('fonts.googleapis.com');
    const q = await json('/queues/api/queues?activeQueue=exec-model&page=1&jobsPerPage=10');
    expect(q.queues.map((x: any) => x.name)).toEqual(expect.arrayContaining(['exec-model', 'exec-testonly_corrupt-model', 'triage']));
    expect(q.queues.every((x: any) => x.readOnlyMode === true)).toBe(true);
  });
});

describe('safety', () => {
  it('a path-traversal attempt gets 404', async () => {
    const attempts = [
      `/signatures/..%2F..%2F..%2Fetc%2Fpasswd`,
      `/signatures/..%2F..%2F..%2Fetc/files/passwd`,
      `/signatures/${fx.signature}/files/..%2Fsignature.json`,
      `/signatures/${fx.signature}/files/..%2F..%2F..%2Fcampaigns%2F${fx.campaign}%2Fcampaign.json`,
      `/signatures/${fx.signature}/files/occurrences.jsonl`,
      `/signatures/%2e%2e/files/report.md`,
      `/signatures/..%252F..%252Fetc/files/passwd`,
      `/signatures/${fx.signature}%2F..%2F${fx.signature}/files/repro.c`,
      `/api/signatures/..%2F..%2Fetc%2Fpasswd`,
      `/signatures/${fx.signature}/files/%2Fetc%2Fpasswd`,
    ];
    for (const a of attempts) {
      const r = await get(a);
      expect(r.status, a).toBe(404);
      expect(await r.text(), a).not.toMatch(/root:x:0:0|"seed":/);
    }
  });

  it('a report file that is a link out of the data directory gets 404', async () => {
    const dir = join(signaturesRoot(fx.dataDir), fx.signature);
    symlinkSync('/etc/passwd', join(dir, 'kernel.config'));
    try {
      const r = await get(`/signatures/${fx.signature}/files/kernel.config`);
      expect(r.status).toBe(404);
      expect(await r.text()).not.toContain('root:');
    } finally {
      unlinkSync(join(dir, 'kernel.config'));
    }
  });

  it('only GET and HEAD are served: nothing can change a queue or the data', async () => {
    expect((await get('/api/overview', { method: 'POST' })).status).toBe(405);
    expect((await get('/queues/api/queues/exec-model/pause', { method: 'PUT' })).status).toBe(405);
    expect((await get('/queues/api/queues/triage/clean/completed', { method: 'PUT' })).status).toBe(405);
    expect((await get(`/signatures/${fx.signature}/files/repro.c`, { method: 'DELETE' })).status).toBe(405);
    expect((await get('/api/overview', { method: 'HEAD' })).status).toBe(200);
  });

  it('serving every page and endpoint leaves Redis as it was', async () => {
    const snapshot = async () => {
      const keys = (await client.keys(`${fx.namespace}:*`)).sort();
      const out: string[] = [];
      for (const k of keys) {
        const type = await client.type(k);
        const size =
          type === 'hash' ? await client.hlen(k) : type === 'zset' ? await client.zcard(k) : type === 'set' ? await client.scard(k) : type === 'list' ? await client.llen(k) : type === 'stream' ? await client.xlen(k) : await client.strlen(k);
        out.push(`${k} ${type} ${size}`);
      }
      return out;
    };
    const before = await snapshot();
    for (const p of ['/', '/signatures', `/signatures/${fx.signature}`, '/kernels', '/workers', '/metrics', '/api/overview', '/api/queues', '/api/workers', '/api/kernels', `/api/signatures/${fx.signature}`, '/queues/', '/queues/api/queues?activeQueue=triage&page=1&jobsPerPage=10'])
      expect((await get(p)).status, p).toBe(200);
    expect(await snapshot()).toEqual(before);
  });
});

describe('a crash report (console log from the kernel-log golden file 03, written by triage\'s report writer)', () => {
  it('shows the kernel log excerpt escaped and says the kernel crashed', async () => {
    const golden = readFileSync(join(ROOT, 'worker/kernel-log/testdata/03.txt'), 'utf8');
    const title = /^TITLE: (.*)$/m.exec(golden)![1]!;
    const log = golden.split('\n').filter((l) => l.startsWith('[')).join('\n');
    const dataDir = tempDir('dash-crash');
    try {
      const store = new DirSignatureStore(signaturesRoot(dataDir));
      const theCase = JSON.parse(readFileSync(join(signaturesRoot(fx.dataDir), fx.signature, 'case.json'), 'utf8'));
      const outcome = { kind: 'crash' as const, target: 'qemu:6.1.0-56-amd64', title, log, durationMs: 1200 };
      const filed = (await fileFinding(store, { outcome, theCase, target: outcome.target, kernelLog: log }))!;
      await writeReport(signatureDir(store.root, filed.record.id), { record: (await store.get(filed.record.id))!, original: theCase, outcome, kernelLog: log });
      const model = new FarmReadModel({ redis: client, queueConnection: client, namespace: fx.namespace, dataDir });
      const d = (await model.signature(filed.record.id))!;
      expect(d.row.kernels).toEqual(['6.1.0-56-amd64']);
      expect(d.row.source).toBe('kernel');
      expect(d.row.files).toContain('console.log');
      const html = signatureBody(d);
      expect(html).toContain('The kernel crashed: <code>general protection fault in bio_split_rw</code>');
      expect(html).toContain('general protection fault, probably for non-canonical address 0xdffffc0000000003');
      expect(html).toContain('<h2>Console / kernel log</h2>');
      await model.close();
    } finally {
      removeDir(dataDir);
    }
  });
});
