/**
 * `blockfarm run --target qemu[:ID]` as users run it: the same verdict
 * format and exit codes as the other targets, --kernel-log, and one clear
 * line with the right exit code for a target that cannot be used.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSeedCases } from '../../corpus/seeds.ts';
import { validateCase } from '../../model/index.ts';
import { type SeedRun, blockfarm, checkSeedOutcome, lines, testKernel } from './helpers.ts';

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

  it('runs every seed with --target qemu (the newest fetched kernel): one JSON object, the same verdicts as qemu:ID', async () => {
    const r = await blockfarm(['run', 'corpus/seeds', '--target', 'qemu', '--json']);
    const doc = JSON.parse(r.stdout) as { target: string; results: Array<SeedRun & { verdict: string; case: string }>; summary: Record<string, number> };
    expect(doc.target).toBe('qemu');
    expect(new Set(doc.results.map((x) => (x as { target?: string }).target))).toEqual(new Set([`qemu:${id}`]));
    const seeds = loadSeedCases();
    expect(doc.results).toHaveLength(seeds.length);
    for (const s of seeds) {
      const v = validateCase(s.caseJson);
      if (!v.ok) throw new Error(`${s.file} is invalid`);
      const res = doc.results.find((x) => x.case === v.value.name);
      expect(res, v.value.name).toBeDefined();
      checkSeedOutcome(v.value.name, v.value, id, { ...res!, kind: res!.verdict });
    }
    // Findings (S1) come first among the combined exit codes.
    expect(r.code, r.stderr).toBe(doc.results.some((x) => x.verdict === 'divergence') ? 1 : doc.results.some((x) => x.verdict === 'infra-error') ? 4 : 0);
  }, 900_000);

  it('a VM that does not boot is an infrastructure error: exit 4, never a finding', async () => {
    // 48 MiB cannot hold the kernel and its initramfs: the guest dies while booting (both the vmlinux and the bzImage).
    const r = await blockfarm(['run', PASSING, '--target', `qemu:${id}`, '--json'], { BLOCKFARM_QEMU_MEM: '48' });
    expect(r.code, r.stderr).toBe(4);
    const doc = JSON.parse(r.stdout) as { verdict: string; message: string };
    expect(doc.verdict).toBe('infra-error');
    expect(doc.message).toMatch(/no VM: .*vmlinux: .*bzImage: /);
  }, 300_000);

  it('answers a target it cannot use with one line: unknown or malformed name (2), kernel not fetched (3), no kernel at all (3)', async () => {
    const bad = await blockfarm(['run', PASSING, '--target', 'qemu:newest']);
    expect(bad.code).toBe(2);
    // Not a Debian kernel id, so a name for an own kernel (kernels add), and none has it.
    expect(lines(bad.stderr)).toEqual([expect.stringMatching(/^blockfarm run: target 'qemu:newest' refused: .*no kernel named 'newest'/)]);
    const notName = await blockfarm(['run', PASSING, '--target', 'qemu:no/such']);
    expect(notName.code).toBe(2);
    expect(lines(notName.stderr)).toEqual([expect.stringMatching(/'no\/such' is neither a Debian kernel id .* nor a kernel name/)]);
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
