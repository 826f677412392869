/**
 * The signature stores (in memory, under a data directory, and the farm's
 * Redis store mirrored into a data directory, on a real Redis) behave the
 * same: counts, first/last seen, targets and kernels, reproduction rate,
 * lifecycle, aliases, cases, and which open signatures a new kernel re-tests.
 * The Redis store also: two coordinators filing at once lose no count, a
 * status changed in the files (the CLI) wins when newer, and a new Redis
 * goes on from the files.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisSignatureStore } from '../../coordinator/triage/redis-store.ts';
import { redisClient } from '../farm/helpers/farm.ts';
import { type TestRedis, startTestRedis, uniqueNamespace } from '../farm/helpers/redis.ts';
import type { Case } from '../../model/index.ts';
import { signaturesRoot } from '../../coordinator/triage/files.ts';
import { type Signature, signatureId } from '../../coordinator/triage/signature.ts';
import { DirSignatureStore, MemorySignatureStore, type SignatureStore, signaturesToRetest } from '../../coordinator/triage/store.ts';
import { build, caseInput } from '../helpers/cases.ts';

const dirs: string[] = [];
let redis: TestRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  client = redisClient(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'blockfarm-sigstore-'));
  dirs.push(d);
  return d;
}

function sig(title: string, altTitles: string[] = []): Signature {
  const key = `kernel|${title}`;
  return { id: signatureId(key, title), key, title, parts: { source: 'kernel', outcome: 'crash', kernelTitle: title }, altIds: altTitles.map((a) => signatureId(`kernel|${a}`, a)) };
}

const aCase: Case = build(caseInput([{ id: 'd', kind: 'disk', size: 1 << 20 }], [{ kind: 'write', id: 1, target: 'd', offset: 0, length: 4096 }])).c;

const stores: Array<[string, () => SignatureStore]> = [
  ['memory', () => new MemorySignatureStore()],
  ['data directory', () => new DirSignatureStore(signaturesRoot(dataDir()))],
  ['redis', () => new RedisSignatureStore({ redis: client, namespace: uniqueNamespace('sigstore'), root: signaturesRoot(dataDir()) })],
];

describe.each(stores)('%s store', (_name, make) => {
  it('counts occurrences per target and kernel with first and last seen', async () => {
    const s = make();
    const a = sig('WARNING in ext4_evict_inode');
    const r1 = await s.record({ signature: a, target: 'qemu:6.1.0-21-amd64', kernel: '6.1.0-21-amd64', kernelVersion: '6.1.90-1', at: 100, theCase: aCase, caseId: 'c1', campaign: 'k1' });
    const r2 = await s.record({ signature: a, target: 'qemu:6.1.0-21-amd64', kernel: '6.1.0-21-amd64', at: 300 });
    const r3 = await s.record({ signature: a, target: 'host', kernel: '6.18.44', at: 200 });
    expect([r1.isNew, r2.isNew, r3.isNew]).toEqual([true, false, false]);
    expect([r1.newKernel, r2.newKernel, r3.newKernel]).toEqual([true, false, true]);
    const r = (await s.get(a.id))!;
    expect(r).toMatchObject({ count: 3, firstSeen: 100, lastSeen: 300, status: 'new', first: { target: 'qemu:6.1.0-21-amd64', caseId: 'c1', campaign: 'k1' } });
    expect(r.targets['qemu:6.1.0-21-amd64']).toEqual({ count: 2, first: 100, last: 300 });
    expect(r.kernels['6.18.44']).toEqual({ count: 1, first: 200, last: 200 });
    expect(r.kernelVersions['6.1.0-21-amd64']).toBe('6.1.90-1');
    expect(await s.getCase(a.id, 'original')).toEqual(aCase);
    expect(await s.getCase(a.id, 'minimized')).toBeUndefined();
  });

  it('keeps the lifecycle and the reproduction rate', async () => {
    const s = make();
    const a = sig('BUG: unable to handle page fault in dm_table_find_target');
    await s.record({ signature: a, target: 'host', at: 1 });
    await s.setReproduction(a.id, { runs: 10, reproduced: 3, target: 'host', case: 'minimized' });
    expect((await s.get(a.id))!.reproduction).toMatchObject({ runs: 10, reproduced: 3, rate: 0.3 });
    await s.setStatus(a.id, 'reported', { note: 'sent to dm-devel' });
    await expect(s.setStatus(a.id, 'fixed')).rejects.toThrow(/kernel/);
    const fixed = await s.setStatus(a.id, 'fixed', { fixedIn: '6.1.0-22-amd64' });
    expect(fixed).toMatchObject({ status: 'fixed', fixedIn: '6.1.0-22-amd64', statusNote: 'sent to dm-devel' });
    await expect(s.setStatus(a.id, 'bogus' as never)).rejects.toThrow(/unknown status/);
    await expect(s.setStatus('no-such-sig-000000000000', 'invalid')).rejects.toThrow(/no signature/);
  });

  it('merges records by hand (alias): counts add, the absorbed id resolves to the survivor', async () => {
    const s = make();
    const a = sig('wrong data from read via io_uring');
    const b = sig('wrong data from read via psync');
    await s.record({ signature: a, target: 'host', at: 10, theCase: aCase });
    await s.record({ signature: b, target: 'qemu:x', kernel: 'x', at: 20 });
    await s.putCase(b.id, 'minimized', aCase);
    const merged = await s.alias(b.id, a.id);
    expect(merged.count).toBe(2);
    expect(merged.aliases).toContain(b.id);
    expect((await s.get(b.id))!.id).toBe(a.id);
    expect(await s.list()).toHaveLength(1);
    expect(await s.getCase(a.id, 'minimized')).toEqual(aCase);
    // Later occurrences under the absorbed id land on the survivor.
    const r = await s.record({ signature: b, target: 'host', at: 30 });
    expect(r.record.id).toBe(a.id);
    expect(r.record.count).toBe(3);
  });

  it('re-tests open signatures on a new kernel, once, with the minimized case when there is one', async () => {
    const s = make();
    const open1 = sig('WARNING in loop_configure');
    const open2 = sig('KASAN: slab-use-after-free Read in dm_put_live_table');
    const seenThere = sig('INFO: task hung in blk_mq_freeze_queue_wait');
    const fixed = sig('WARNING in ext4_da_update_reserve_space');
    const suppressed = sig('possible deadlock in lo_open');
    for (const x of [open1, open2, fixed, suppressed]) await s.record({ signature: x, target: 'qemu:6.1.0-21-amd64', kernel: '6.1.0-21-amd64', at: 5, theCase: aCase });
    await s.record({ signature: seenThere, target: 'qemu:6.1.0-25-amd64', kernel: '6.1.0-25-amd64', at: 6, theCase: aCase });
    await s.setStatus(fixed.id, 'fixed', { fixedIn: '6.1.0-25-amd64' });
    await s.setStatus(suppressed.id, 'suppressed');
    await s.setStatus(open2.id, 'reported');
    const min = structuredClone(aCase);
    min.name = 'minimized';
    await s.putCase(open1.id, 'minimized', min);
    let items = await signaturesToRetest(s, '6.1.0-25-amd64');
    expect(items.map((i) => i.record.id).sort()).toEqual([open1.id, open2.id].sort());
    expect(items.find((i) => i.record.id === open1.id)).toMatchObject({ role: 'minimized', theCase: { name: 'minimized' } });
    await s.recordRetest(open1.id, { kernel: '6.1.0-25-amd64', target: 'qemu:6.1.0-25-amd64', runs: 5, reproduced: 0 });
    items = await signaturesToRetest(s, '6.1.0-25-amd64');
    expect(items.map((i) => i.record.id)).toEqual([open2.id]);
  });
});

describe('data directory store', () => {
  it('one folder per signature, named by its id; ids that are not ours are refused', async () => {
    const d = mkdtempSync(join(tmpdir(), 'blockfarm-sigstore-'));
    dirs.push(d);
    const s = new DirSignatureStore(signaturesRoot(d));
    const a = sig('WARNING in ext4_evict_inode');
    await s.record({ signature: a, target: 'host', theCase: aCase });
    expect(readdirSync(join(d, 'reports'))).toEqual([a.id]);
    expect(readdirSync(join(d, 'reports', a.id)).sort()).toEqual(['case.json', 'signature.json']);
    for (const bad of ['../etc', 'a/b', '..', '.hidden', 'A-B', '']) {
      expect(await s.get(bad)).toBeUndefined();
      await expect(s.putCase(bad, 'minimized', aCase)).rejects.toThrow(/not a signature id/);
    }
    // A second store on the same directory (the CLI while the farm runs) sees the same records.
    expect((await new DirSignatureStore(signaturesRoot(d)).list()).map((r) => r.id)).toEqual([a.id]);
  });
});

describe('the redis store', () => {
  it('two coordinators filing the same signature at once lose no count', async () => {
    const ns = uniqueNamespace('sigstore-race');
    const root = signaturesRoot(dataDir());
    const a = new RedisSignatureStore({ redis: client, namespace: ns, root });
    const b = new RedisSignatureStore({ redis: redisClient(redis.url), namespace: ns, root });
    const s = sig('WARNING in loop_process_work');
    const filed = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).record({ signature: s, target: i % 3 ? 'qemu:6.1.0-56-amd64' : 'host', theCase: aCase })));
    expect(filed.filter((f) => f.isNew)).toHaveLength(1);
    const r = await a.get(s.id);
    expect(r?.count).toBe(40);
    expect(r?.targets['host']?.count).toBe(14);
    expect((await new DirSignatureStore(root).get(s.id))?.count).toBe(40);
  });

  it('takes a status changed in the files when it is newer, and goes on from the files with a new Redis', async () => {
    const root = signaturesRoot(dataDir());
    const ns = uniqueNamespace('sigstore-files');
    const store = new RedisSignatureStore({ redis: client, namespace: ns, root });
    const s = sig('BUG: unable to handle page fault in blk_mq_end_request');
    await store.record({ signature: s, target: 'host', at: 1000, theCase: aCase });
    // The CLI changes the status in the data directory.
    await new DirSignatureStore(root).setStatus(s.id, 'reported', { note: 'sent upstream', at: Date.now() });
    const seen = await store.record({ signature: s, target: 'host', at: 2000 });
    expect(seen.record).toMatchObject({ status: 'reported', statusNote: 'sent upstream', count: 2 });
    expect(JSON.parse((await client.hget(`${ns}:signatures`, s.id))!).status).toBe('reported');
    // Another Redis (namespace) over the same data directory: the records and cases are there.
    const fresh = new RedisSignatureStore({ redis: client, namespace: uniqueNamespace('sigstore-new'), root });
    expect((await fresh.list()).map((r) => [r.id, r.count, r.status])).toEqual([[s.id, 2, 'reported']]);
    expect(await fresh.getCase(s.id, 'original')).toEqual(aCase);
    const third = await fresh.record({ signature: s, target: 'qemu:6.1.0-56-amd64', at: 3000 });
    expect(third).toMatchObject({ isNew: false, newTarget: true });
    expect(third.record.count).toBe(3);
  });
});
