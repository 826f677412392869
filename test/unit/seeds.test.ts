/**
 * The seed corpus: every case is valid, each scenario of SCENARIOS.md has one,
 * and each runs on the model target and passes (the model's predictor and its
 * judge agree on them).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSeedCases, scenarioOfFileName } from '../../corpus/seeds.ts';
import { CASE_FORMAT, validateCase } from '../../model/index.ts';
import { runCase } from '../../worker/run-case.ts';
import { ModelTarget } from '../../worker/targets/model/model-target.ts';

const seeds = loadSeedCases();

describe('scenarioOfFileName', () => {
  it('maps the s1-..s5- prefixes and nothing else', () => {
    expect(scenarioOfFileName('s1-loop.json')).toBe('S1');
    expect(scenarioOfFileName('s5-race.json')).toBe('S5');
    expect(scenarioOfFileName('corpus/seeds/s3-x.json')).toBe('S3');
    expect(scenarioOfFileName('s6-x.json')).toBeUndefined();
    expect(scenarioOfFileName('s1.json')).toBeUndefined();
    expect(scenarioOfFileName('x-s1-y.json')).toBeUndefined();
  });
});

describe('loadSeedCases', () => {
  it('reads only *.json, sorted by name, and names the file on a syntax error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seeds-'));
    try {
      writeFileSync(join(dir, 's2-b.json'), '{"a":2}');
      writeFileSync(join(dir, 's1-a.json'), '{"a":1}');
      writeFileSync(join(dir, 'notes.txt'), 'not a case');
      expect(loadSeedCases(dir)).toEqual([
        { file: 's1-a.json', caseJson: { a: 1 } },
        { file: 's2-b.json', caseJson: { a: 2 } },
      ]);
      writeFileSync(join(dir, 's3-bad.json'), '{');
      expect(() => loadSeedCases(dir)).toThrow(/s3-bad\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('seed corpus', () => {
  it('has at least one seed for every scenario, and every file is named for one', () => {
    const per = new Map<string, number>();
    for (const { file } of seeds) {
      const s = scenarioOfFileName(file);
      expect(s, `${file} is not named s1-..s5-`).toBeDefined();
      per.set(s!, (per.get(s!) ?? 0) + 1);
    }
    for (const s of ['S1', 'S2', 'S3', 'S4', 'S5']) expect(per.get(s) ?? 0, `seeds for ${s}`).toBeGreaterThanOrEqual(1);
  });

  it.each(seeds.map((s) => [s.file, s.caseJson] as const))('%s is a valid seed case', (file, json) => {
    const v = validateCase(json);
    expect(v.ok ? [] : v.issues).toEqual([]);
    if (!v.ok) return;
    const c = v.value;
    expect(c.format).toBe(CASE_FORMAT);
    expect(`${c.name}.json`).toBe(file);
    expect(c.meta.origin).toBe('seed');
    expect(c.description ?? '').toMatch(new RegExp(`^${scenarioOfFileName(file)}\\b`));
    const ops = c.program.threads.flatMap((t) => t.ops);
    expect(ops.length).toBeLessThanOrEqual(60);
  });

  it.each(seeds.map((s) => [s.file, s.caseJson] as const))('%s passes on the model target', async (_file, json) => {
    const v = validateCase(json);
    if (!v.ok) throw new Error(v.issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
    const target = new ModelTarget();
    const out = await runCase(target, v.value, v.info);
    await target.close();
    expect(out.kind === 'pass' ? 'pass' : out).toBe('pass');
  });
});
