/**
 * The farm's pure parts: names on the wire, job data checks, Redis URLs,
 * option parsing, case streams, signatures and the retention sweep.
 */
import { mkdirSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageProblem, parseDuration, parsePositiveInt } from '../../coordinator/farm/cli-options.ts';
import { BUILTIN_GENERATOR, CAMPAIGN_GENERATOR, CaseSource, builtinCase, indexSeed } from '../../coordinator/farm/case-source.ts';
import { DEFAULT_RETENTION, dataDirUsage, loadRetention, sweepRetention } from '../../coordinator/farm/retention.ts';
import { signatureOf } from '../../coordinator/triage/signature.ts';
import { fractionDone, statusText } from '../../coordinator/farm/progress.ts';
import { emptyCounts } from '../../coordinator/farm/campaign-state.ts';
import { validateCase } from '../../model/index.ts';
import { BadRedisUrl, parseRedisUrl, redactUrl, redisOptions } from '../../infra/redis/connection.ts';
import {
  PROTOCOL_VERSION, caseId, decodeTargetName, encodeTargetName, execJobId, execQueueName, parseExecJobData, targetNameSyntaxProblem,
} from '../../worker/farm/protocol.ts';
import { targetDefaults, targetKind } from '../../worker/farm/target-defaults.ts';
import { removeDir, tempDir } from './helpers/farm.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) removeDir(d);
});

describe('target names on the wire', () => {
  it.each([
    ['model', 'exec-model'],
    ['host', 'exec-host'],
    ['qemu:6.1.0-56-amd64', 'exec-qemu-6.1.0-56-amd64'],
    ['testonly_corrupt:model', 'exec-testonly_corrupt-model'],
    ['ssh:box.example.org', 'exec-ssh-box.example.org'],
  ])('%s -> %s and back', (name, queue) => {
    expect(execQueueName(name)).toBe(queue);
    expect(queue).not.toContain(':');
    expect(decodeTargetName(queue.slice('exec-'.length))).toBe(name);
  });

  it.each(['qemu-x:y', 'Model', 'qemu:', 'a b', 'qemu:{x}', 'x:y:z', ''])('refuses %j', (name) => {
    expect(targetNameSyntaxProblem(name)).toBeDefined();
    expect(() => encodeTargetName(name)).toThrow();
  });

  it('job ids carry no ":"', () => {
    expect(execJobId('seed-7', 'qemu:6.1.0-56-amd64', 0, 4)).toBe('seed-7-qemu-6.1.0-56-amd64-0-4');
  });
});

describe('exec job data', () => {
  const c = builtinCase(1);
  const good = {
    v: PROTOCOL_VERSION,
    coordinator: 'host-1-abcdef',
    campaign: 'seed-1',
    target: 'model',
    from: 0,
    to: 1,
    caseTimeoutMs: 1000,
    cases: [{ id: caseId(c), index: 0, origin: 'generated', case: c }],
  };
  it('accepts a well-formed job', () => {
    expect(parseExecJobData(good, 'model').ok).toBe(true);
  });
  it.each([
    ['no coordinator', { ...good, coordinator: undefined }, /coordinator/],
    ['a ":" in the campaign', { ...good, campaign: 'a:b' }, /campaign/],
    ['another protocol version', { ...good, v: 2 }, /^malformed exec job \(protocol v1\): v:/],
    ['a range that does not match', { ...good, to: 5 }, /range \[0, 5\) does not match its 1 cases/],
    ['no cases', { ...good, cases: [] }, /cases/],
    ['a bad case id', { ...good, cases: [{ ...good.cases[0], id: 'x' }] }, /cases\.0\.id/],
    ['an unknown field', { ...good, extra: 1 }, /extra/],
  ])('refuses %s in one line', (_label, data, why) => {
    const r = parseExecJobData(data, 'model');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toMatch(why);
      expect(r.reason).not.toContain('\n');
    }
  });
  it('refuses a job for another target', () => {
    const r = parseExecJobData(good, 'host');
    expect(r.ok ? '' : r.reason).toBe("job for target 'model' on the queue of 'host'");
  });
});

describe('Redis URLs', () => {
  it('parses AUTH and TLS', () => {
    expect(parseRedisUrl('rediss://bob:s%3Acret@redis.example:6380/2', {})).toMatchObject({ host: 'redis.example', port: 6380, db: 2, username: 'bob', password: 's:cret', tls: true });
    expect(parseRedisUrl('redis://:pw@[::1]', {})).toMatchObject({ host: '::1', port: 6379, password: 'pw', tls: false });
  });
  it('takes the password from BLOCKFARM_REDIS_PASSWORD when the URL has none', () => {
    expect(parseRedisUrl('redis://h', { BLOCKFARM_REDIS_PASSWORD: 'envpw' }).password).toBe('envpw');
    expect(parseRedisUrl('redis://:urlpw@h', { BLOCKFARM_REDIS_PASSWORD: 'envpw' }).password).toBe('urlpw');
  });
  it('verifies TLS against the system CAs or BLOCKFARM_REDIS_CA, never skips it', () => {
    const o = redisOptions(parseRedisUrl('rediss://h', {}), { env: {} });
    expect(o.tls).toEqual({ servername: 'h' });
    expect(() => redisOptions(parseRedisUrl('rediss://h', {}), { env: { BLOCKFARM_REDIS_CA: '/nonexistent/ca.pem' } })).toThrow(BadRedisUrl);
  });
  it('never shows the password', () => {
    expect(redactUrl('redis://bob:secret@h:1/0')).toBe('redis://bob:***@h:1/0');
    expect(redactUrl('redis://h:1')).toBe('redis://h:1');
  });
  it.each(['http://h', 'h:6379', 'redis://', 'redis://h/99'])('refuses %s', (url) => {
    expect(() => parseRedisUrl(url, {})).toThrow(BadRedisUrl);
  });
});

describe('options', () => {
  it.each([
    ['90', 90_000],
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
  ])('duration %s', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', 'soon', '5x', '-1', '0'])('refuses duration %j', (text) => expect(() => parseDuration(text)).toThrow(UsageProblem));
  it('counts', () => {
    expect(parsePositiveInt('3', '--n')).toBe(3);
    expect(() => parsePositiveInt('0', '--n')).toThrow(/--n: '0' is not a whole number >= 1/);
    expect(parsePositiveInt('0', '--workers', 0)).toBe(0);
  });
});

describe('case streams', () => {
  it('case i of a campaign is the same whenever and in whatever batch it is made', async () => {
    const a = new CaseSource({ seed: 5, target: 'model', generator: BUILTIN_GENERATOR, mutationRate: 0 });
    const b = new CaseSource({ seed: 5, target: 'model', generator: BUILTIN_GENERATOR, mutationRate: 0 });
    const whole = await a.batch(0, 20);
    const parts = [...(await b.batch(0, 7)), ...(await b.batch(7, 20))];
    expect(parts.map((e) => e.id)).toEqual(whole.map((e) => e.id));
    expect(new Set(whole.map((e) => e.id)).size).toBe(20);
    for (const e of whole) expect(validateCase(e.case).ok).toBe(true);
  });

  it('the campaign generator: valid cases for what the target can build, classified', async () => {
    const s = new CaseSource({ seed: 9, target: 'host', generator: CAMPAIGN_GENERATOR, mutationRate: 0 });
    const batch = await s.batch(0, 30);
    for (const e of batch) {
      const v = validateCase(e.case);
      expect(v.ok).toBe(true);
      if (v.ok) {
        expect(caseId(v.value)).toBe(e.id);
        for (const l of v.value.stack.layers) expect(['disk', 'fs', 'file', 'loop']).toContain(l.kind);
      }
    }
    expect(batch.some((e) => e.scenarios?.length)).toBe(true);
  });

  it('seed cases come first, then generated ones; mutations name their parent', async () => {
    const seedCase = builtinCase(indexSeed(3, 3));
    const parent = builtinCase(indexSeed(4, 4));
    const corpus = { size: async () => 1, at: async () => ({ id: 'f'.repeat(64), case: parent }) };
    const s = new CaseSource({ seed: 1, target: 'model', generator: BUILTIN_GENERATOR, seeds: [seedCase], corpus, mutationRate: 0.5 });
    const batch = await s.batch(0, 40);
    expect(batch[0]).toMatchObject({ origin: 'seed', id: caseId(seedCase) });
    const mutated = batch.filter((e) => e.origin === 'mutated');
    expect(mutated.length).toBeGreaterThan(5);
    for (const m of mutated) expect(m.parent).toBe('f'.repeat(64));
  });
});

describe('signatures', () => {
  it('do not depend on addresses, numbers or the case', () => {
    const crash = (title: string) => ({ kind: 'crash' as const, target: 'x', title, log: '', durationMs: 1 });
    expect(signatureOf(crash('BUG: unable to handle page fault for address: ffff8880deadbeef')).id).toBe(signatureOf(crash('BUG: unable to handle page fault for address: ffff888012345678')).id);
    const d = (op: number) => ({ kind: 'divergence' as const, target: 'x', notes: [], durationMs: 1, divergences: [{ class: 'wrong-data' as const, dataClass: 'stale' as const, op, opKind: 'read', expected: '', observed: '', message: '' }] });
    expect(signatureOf(d(3)).id).toBe(signatureOf(d(7)).id);
    expect(signatureOf({ kind: 'hang', target: 'x', title: 'INFO: task kworker/1:2 blocked for more than 120 seconds', log: '', durationMs: 1 }).id).toBe(
      signatureOf({ kind: 'hang', target: 'y', title: 'INFO: task kworker/0:1 blocked for more than 122 seconds', log: '', durationMs: 1 }).id,
    );
  });
});

describe('target defaults', () => {
  it('wrappers behave like their inner target', () => {
    expect(targetKind('testonly_corrupt:model')).toBe('model');
    expect(targetKind('qemu:6.1.0-56-amd64')).toBe('qemu');
    expect(targetDefaults('qemu:6.1.0-56-amd64').lockDurationMs).toBeGreaterThanOrEqual(targetDefaults('qemu:x').caseTimeoutMs);
  });
});

describe('progress', () => {
  it('shows cases, rate, findings and time left', () => {
    const counts = { ...emptyCounts(), executed: 1234, divergence: 2 };
    const snap = { campaign: 'seed-1', seed: 1, elapsedMs: 30_000, remainingMs: 30_000, draining: false, memory: { rssMb: 1, heapUsedMb: 1 }, targets: [{ target: 'model', counts, inflightBatches: 2, rate: 456.4, workers: 1, scenarios: {} }] };
    expect(statusText(snap)).toBe('model 1,234 cases 456/s 2 found | 30 s left');
    expect(fractionDone(snap)).toBe(0.5);
  });
});

describe('retention', () => {
  function file(root: string, rel: string, bytes: number, ageDays: number): string {
    const p = join(root, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, Buffer.alloc(bytes));
    const t = (Date.now() - ageDays * 86_400_000) / 1000;
    utimesSync(p, t, t);
    return p;
  }

  it('removes what is older than the age cap, then the oldest down to 90% of the size cap', async () => {
    const root = tempDir('retention');
    dirs.push(root);
    const old = file(root, 'logs/c1/model/a.log', 10, 40);
    const recent = file(root, 'logs/c1/model/b.log', 10, 1);
    const c1 = file(root, 'corpus/cases/aa/aa1.json', 400, 5);
    const c2 = file(root, 'corpus/cases/bb/bb1.json', 400, 3);
    const c3 = file(root, 'corpus/cases/cc/cc1.json', 400, 1);
    const r1 = file(root, 'reports/sig1/report.json', 100, 2);
    file(root, 'reports/sig1/case.json', 100, 1);
    const policy = { ...DEFAULT_RETENTION, corpus: { maxBytes: 1000, maxAgeDays: 365 } };
    const results = await sweepRetention(root, policy);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(recent)).toBe(true);
    // 1200 bytes > 1000: the oldest go until <= 900.
    expect(existsSync(c1)).toBe(false);
    expect(existsSync(c2)).toBe(true);
    expect(existsSync(c3)).toBe(true);
    expect(existsSync(r1)).toBe(true);
    expect(results.find((r) => r.category === 'corpus')).toMatchObject({ freedBytes: 400, keptBytes: 800 });
    // Under the cap now: a second sweep removes nothing.
    expect((await sweepRetention(root, policy)).every((r) => r.removed.length === 0)).toBe(true);
    const usage = await dataDirUsage(root);
    expect(usage.reports).toMatchObject({ bytes: 200, entries: 1 });
  });

  it('reads caps from retention.json and names bad ones', async () => {
    const root = tempDir('retention-json');
    dirs.push(root);
    expect((await loadRetention(root)).source).toBe('defaults');
    writeFileSync(join(root, 'retention.json'), JSON.stringify({ logs: { maxAgeDays: 7 } }));
    const { policy } = await loadRetention(root);
    expect(policy.logs).toEqual({ maxBytes: DEFAULT_RETENTION.logs.maxBytes, maxAgeDays: 7 });
    writeFileSync(join(root, 'retention.json'), JSON.stringify({ logz: {} }));
    await expect(loadRetention(root)).rejects.toThrow(/unknown category 'logz'/);
    writeFileSync(join(root, 'retention.json'), JSON.stringify({ logs: { maxBytes: -1 } }));
    await expect(loadRetention(root)).rejects.toThrow(/logs\.maxBytes: expected a positive number/);
  });
});
