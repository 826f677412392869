/**
 * `blockfarm run --target qemu[:ID]` as users run it: the same verdict
 * format and exit codes as the other targets, --kernel-log, and one clear
 * line with the right exit code for a target that cannot be used.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockfarm, lines, testKernel } from './helpers.ts';

const PASSING = 'test/fixtures/cases/write-read-disk.json';
const S1 = 'corpus/seeds/s1-loop-dio-ext4-lbs512.json';
let id = '';
const temps: string[] = [];

beforeAll(async () => {
  id = (await testKernel()).info.id;
}, 300_000);

afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

describe('blockfarm run --target qemu', () => {
  it('prints the per-case JSON object and exits 0 for a pass', async () => {
    const r = await blockfarm(['run', PASSING, '--target', 'qemu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { verdict: string; target: string; case: string; exitCode: number };
    expect(doc).toMatchObject({ verdict: 'pass', target: `qemu:${id}`, case: 'write-read-disk', exitCode: 0 });
  }, 300_000);

  it('--kernel-log prints the titled kernel findings; a divergence exits 1', async () => {
    const r = await blockfarm(['run', S1, '--target', `qemu:${id}`, '--kernel-log']);
    expect(r.code, r.stderr).toBe(1);
    const out = lines(r.stdout);
    expect(out[0]).toMatch(/^divergence\s+s1-loop-dio-ext4-lbs512\s+\d+ ms/);
    expect(out).toContain('  kernel: I/O error on loopN');
    const j = await blockfarm(['run', S1, '--target', `qemu:${id}`, '--kernel-log', '--json']);
    expect(j.code).toBe(1);
    expect((JSON.parse(j.stdout) as { kernelReports: unknown[] }).kernelReports).toContainEqual({ title: 'I/O error on loopN', expected: false, count: 1 });
  }, 300_000);

  it('answers a target it cannot use with one line: bad id (2), kernel not fetched (3), no kernel at all (3)', async () => {
    const bad = await blockfarm(['run', PASSING, '--target', 'qemu:newest']);
    expect(bad.code).toBe(2);
    expect(lines(bad.stderr)).toEqual([expect.stringMatching(/^blockfarm run: target 'qemu:newest' refused: .*'newest' is not a kernel id/)]);
    const missing = await blockfarm(['run', PASSING, '--target', 'qemu:6.1.0-1-amd64']);
    expect(missing.code).toBe(3);
    expect(lines(missing.stderr)).toEqual([expect.stringMatching(/kernel 6\.1\.0-1-amd64 is not fetched: run 'blockfarm kernels fetch 6\.1\.0-1-amd64'/)]);
    const empty = await mkdtemp(path.join(tmpdir(), 'blockfarm-nocache-'));
    temps.push(empty);
    const none = await blockfarm(['run', PASSING, '--target', 'qemu'], { BLOCKFARM_CACHE: empty });
    expect(none.code).toBe(3);
    expect(lines(none.stderr)).toEqual([expect.stringMatching(/no kernel is fetched: run 'blockfarm kernels fetch/)]);
  }, 120_000);
});
