/** The corpus store (content-addressed files, an index that survives restarts and torn writes) and what it keeps. */
import { mkdtempSync, rmSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { predictObservation, validateCase } from '../../model/index.ts';
import { generateCase } from '../../coordinator/generate/index.ts';
import { CorpusStore, behaviourFeatures, canonicalJson, caseHash, keepKeys, shouldKeep, shouldKeepAsync } from '../../corpus/store/index.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'blockfarm-corpus-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('case hashes', () => {
  it('canonical JSON sorts keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: undefined, x: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":2,"z":1}]},"b":1}');
  });

  it('covers what a case does, not what it is called', () => {
    const c = generateCase(3, 0);
    expect(caseHash({ ...c, name: 'other', description: 'x', meta: { origin: 'manual' } })).toBe(caseHash(c));
    expect(caseHash({ ...c, seed: (c.seed + 1) >>> 0 })).not.toBe(caseHash(c));
    // Key order in the input does not matter once validated.
    const reverseKeys = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(reverseKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)])) : v;
    const shuffled = reverseKeys(JSON.parse(JSON.stringify(c)));
    const v = validateCase(shuffled);
    expect(v.ok && caseHash(v.value)).toBe(caseHash(c));
    expect(caseHash(c)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('CorpusStore', () => {
  it('stores each case once under its hash, and reopens with the same index', async () => {
    const dir = tmp();
    const s = await CorpusStore.open(dir);
    const cases = [generateCase(3, 1), generateCase(3, 2)];
    const first = await s.add(cases[0]!, { reason: 'new-signature', target: 'model', outcome: 'divergence', signature: 'sig-1', scenarios: ['S1'] });
    expect(first.added).toBe(true);
    expect((await s.add({ ...cases[0]!, name: 'renamed' }, { reason: 'new-outcome-class' })).added).toBe(false);
    await s.add(cases[1]!, { reason: 'new-outcome-class', target: 'model', outcome: 'pass' });
    expect(s.size).toBe(2);
    expect(JSON.parse(readFileSync(s.pathOf(first.hash), 'utf8')).name).toBe(cases[0]!.name);
    const again = await CorpusStore.open(dir);
    expect(again.size).toBe(2);
    expect(again.entry(first.hash)).toMatchObject({ reason: 'new-signature', signature: 'sig-1', origin: 'generated', scenarios: ['S1'] });
    expect(await again.load(first.hash)).toEqual(cases[0]);
    const loaded = [];
    for await (const c of again.cases()) loaded.push(c.name);
    expect(loaded).toEqual(cases.map((c) => c.name));
  });

  it('ignores a torn last index line (a crash mid-append) and keeps the case again later', async () => {
    const dir = tmp();
    const s = await CorpusStore.open(dir);
    const c = generateCase(3, 3);
    await s.add(c, { reason: 'new-outcome-class' });
    appendFileSync(join(dir, 'index.jsonl'), '{"hash":"abc');
    const again = await CorpusStore.open(dir);
    expect(again.size).toBe(1);
    expect((await again.add(generateCase(3, 4), { reason: 'new-outcome-class' })).added).toBe(true);
  });

  it('refuses a case file that was changed on disk', async () => {
    const dir = tmp();
    const s = await CorpusStore.open(dir);
    const { hash } = await s.add(generateCase(3, 5), { reason: 'manual' });
    const text = JSON.parse(readFileSync(s.pathOf(hash), 'utf8'));
    writeFileSync(s.pathOf(hash), JSON.stringify({ ...text, seed: (text.seed + 1) >>> 0 }));
    await expect(s.load(hash)).rejects.toThrow(/does not match/);
  });
});

describe('shouldKeep', () => {
  const seen = new Set<string>();
  const lookup = (k: string) => seen.has(k);
  const mark = (d: ReturnType<typeof shouldKeep>) => {
    if (d.keep) for (const k of d.newKeys) seen.add(k);
  };

  it('keeps a new signature, then not the same one again', () => {
    const d = shouldKeep({ target: 'qemu:6.1', outcome: 'divergence', signature: 'wrong-data:read:loop' }, lookup);
    expect(d).toMatchObject({ keep: true, reason: 'new-signature' });
    mark(d);
    expect(shouldKeep({ target: 'qemu:6.1', outcome: 'divergence', signature: 'wrong-data:read:loop' }, lookup)).toEqual({ keep: false });
    expect(shouldKeep({ target: 'qemu:6.1', outcome: 'divergence', signature: 'other' }, lookup)).toMatchObject({ keep: true, reason: 'new-signature' });
  });

  it('keeps a new outcome class: a new outcome on a target, or a new way a target answered an op', () => {
    const first = shouldKeep({ target: 'host', outcome: 'pass', features: ['read+dio:ok'] }, lookup);
    expect(first).toMatchObject({ keep: true, reason: 'new-outcome-class' });
    mark(first);
    expect(shouldKeep({ target: 'host', outcome: 'pass', features: ['read+dio:ok'] }, lookup)).toEqual({ keep: false });
    expect(shouldKeep({ target: 'host', outcome: 'pass', features: ['read+dio:ok', 'read+dio:EINVAL'] }, lookup)).toMatchObject({ keep: true, reason: 'new-outcome-class', newKeys: ['class:host:pass:read+dio:EINVAL'] });
    // Another kernel is another class.
    expect(shouldKeep({ target: 'qemu:6.1', outcome: 'pass', features: ['read+dio:ok'] }, lookup)).toMatchObject({ keep: true });
  });

  it('keeps new coverage once a kernel reports it, never unsupported or infrastructure errors', async () => {
    mark(shouldKeep({ target: 'host', outcome: 'pass', coverage: ['pc:1'] }, lookup));
    expect(shouldKeep({ target: 'host', outcome: 'pass', coverage: ['pc:1', 'pc:2'] }, lookup)).toMatchObject({ keep: true, reason: 'new-coverage', newKeys: ['cov:pc:2'] });
    expect(shouldKeep({ target: 'host', outcome: 'unsupported', signature: 'x' }, lookup)).toEqual({ keep: false });
    expect(shouldKeep({ target: 'host', outcome: 'infra-error' }, lookup)).toEqual({ keep: false });
    expect(keepKeys({ target: 't', outcome: 'crash', signature: 's' }).map((k) => k.key)).toEqual(['sig:s', 'class:t:crash']);
    const d = await shouldKeepAsync({ target: 'host', outcome: 'pass', coverage: ['pc:3'] }, async (keys) => keys.map(lookup));
    expect(d).toMatchObject({ keep: true, reason: 'new-coverage' });
  });

  it('behaviour features name op kinds, paths and answers', () => {
    const c = generateCase(3, 6);
    const v = validateCase(c);
    if (!v.ok) throw new Error('invalid');
    const f = behaviourFeatures(v.value, predictObservation(v.value, v.info));
    expect(f.length).toBeGreaterThan(0);
    for (const x of f) expect(x).toMatch(/^[a-z-]+(\+[a-z]+)*:(ok|short|E[A-Z0-9]+|SIG[A-Z]+|error)$/);
  });
});
