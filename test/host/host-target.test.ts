/**
 * The host target on this machine's real kernel: seed cases judged end to
 * end, a corruption the model is not told about caught with the right op and
 * offset, and teardown that leaves nothing attached or mounted after a
 * failure at any set-up step or an aborted run. Needs root and loop devices
 * (CI here has both); skips with the reason where the machine lacks them.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Case, type RunOutcome, type StackInfo, validateCase } from '../../model/index.ts';
import { loadSeedCases } from '../../corpus/seeds.ts';
import { buildExecutor } from '../../worker/executor/build.ts';
import type { ExecPlan, PlanOp } from '../../worker/executor/protocol.ts';
import { POST_RUN_OP_BASE } from '../../worker/plan/compile.ts';
import { runCase } from '../../worker/run-case.ts';
import { HostTarget } from '../../worker/targets/host/host-target.ts';

const root = process.getuid?.() === 0;
const loops = existsSync('/dev/loop-control');
const skipReason = !root ? 'not root' : !loops ? 'no /dev/loop-control' : undefined;
if (skipReason) console.log(`skipping the host target tests: ${skipReason}`);

/**
 * Known real divergences of kernels this suite runs on, with their evidence
 * in corpus/findings/. A seed may show these and nothing else.
 */
const KNOWN_FINDINGS: Array<{ seed: string; finding: string; matches: (o: RunOutcome) => boolean }> = [
  {
    seed: 's1-loop-dio-toggle-race',
    finding: 'corpus/findings/loop-set-block-size-eio',
    matches: (o) => o.kind === 'divergence' && o.divergences.every((d) => d.class === 'unexpected-error' && d.observed === 'EIO' && d.opKind === 'write'),
  },
];

let workRoot = '';
const target = () =>
  new HostTarget({ workRoot, executor: buildExecutor, caseTimeoutMs: 120_000 });

function built(input: unknown): { c: Case; info: StackInfo } {
  const v = validateCase(input);
  if (!v.ok) throw new Error(v.issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  return { c: v.value, info: v.info };
}

/** Loop devices and mounts of ours: anything backed by or mounted under the test's work root. */
function leftovers(): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/sys/block').filter((n) => n.startsWith('loop'))) {
    let backing = '';
    try {
      backing = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
    } catch {
      continue;
    }
    if (backing.startsWith(workRoot)) out.push(`loop ${name} -> ${backing}`);
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const point = line.split(' ')[4];
    if (point?.startsWith(workRoot)) out.push(`mount ${point}`);
  }
  return out;
}

const MiB = 1024 * 1024;

/** A raw disk (a loop device over a sparse image) with one write and a read back through O_DIRECT. */
const rawCase = {
  format: 'blockfarm-case/1',
  name: 'raw-write-read',
  seed: 11,
  stack: { layers: [{ id: 'd0', kind: 'disk', size: 16 * MiB }] },
  program: {
    threads: [
      {
        ops: [
          { kind: 'write', id: 1, target: 'd0', offset: 1 * MiB, length: 64 * 1024, direct: true },
          { kind: 'fsync', id: 2, target: 'd0' },
          { kind: 'read', id: 3, target: 'd0', offset: 1 * MiB, length: 64 * 1024, direct: true },
        ],
      },
    ],
  },
};

/** ext4 on a disk, a file written in pieces, an fsync, a read: exercises mkfs, mount, fsck and teardown. */
const fsCase = {
  format: 'blockfarm-case/1',
  name: 'ext4-file',
  seed: 12,
  stack: {
    layers: [
      { id: 'd0', kind: 'disk', size: 64 * MiB },
      { id: 'fs0', kind: 'fs', on: 'd0', type: 'ext4' },
      { id: 'f', kind: 'file', on: 'fs0', name: 'data', size: 0 },
    ],
  },
  program: {
    threads: [
      {
        ops: [
          { kind: 'write', id: 1, target: 'f', offset: 0, length: 12288 },
          { kind: 'fsync', id: 2, target: 'f' },
          { kind: 'write', id: 3, target: 'f', offset: 4096, length: 100 },
          { kind: 'read', id: 4, target: 'f', offset: 0, length: 16384 },
        ],
      },
    ],
  },
};

describe.skipIf(skipReason)('host target on the real kernel', () => {
  beforeAll(async () => {
    workRoot = await mkdtemp('/var/tmp/blockfarm-hosttest-');
    await buildExecutor();
  }, 300_000);

  afterAll(async () => {
    expect(leftovers()).toEqual([]);
    await rm(workRoot, { recursive: true, force: true });
  });

  it('runs a raw-device case and an ext4 case: pass, fsck clean, nothing left behind', async () => {
    for (const input of [rawCase, fsCase]) {
      const { c, info } = built(input);
      const o = await runCase(target(), c, info);
      expect(o, JSON.stringify(o)).toMatchObject({ kind: 'pass' });
      expect(leftovers()).toEqual([]);
    }
  });

  it('judges every seed the host can build: pass, or only a known real kernel divergence', async () => {
    const t = target();
    let ran = 0;
    for (const { file, caseJson } of loadSeedCases()) {
      const { c, info } = built(caseJson);
      const o = await runCase(t, c, info);
      const name = file.replace(/^.*\//, '').replace(/\.json$/, '');
      if (o.kind === 'unsupported') {
        expect(o.reason).toMatch(/has no (dm-mod|md-mod|scsi_debug|gfs2)|cannot build/);
        continue;
      }
      ran++;
      const known = KNOWN_FINDINGS.find((k) => k.seed === name);
      if (o.kind === 'divergence' && known) expect(known.matches(o), `${name}: ${JSON.stringify(o.divergences)}`).toBe(true);
      else expect(o.kind, `${name}: ${JSON.stringify(o)}`).toBe('pass');
      expect(leftovers()).toEqual([]);
    }
    // S1, S2 and S5 seeds on loop, ext4, xfs and btrfs all run here.
    expect(ran).toBeGreaterThanOrEqual(8);
  }, 600_000);

  it('catches a corruption of the backing file the model is not told about, with the right op and offset', async () => {
    const { c, info } = built(rawCase);
    const badOffset = 1 * MiB + 8192;
    // Test-only fault injection: overwrite 512 bytes of the disk image between the write and the read.
    const inject = (plan: ExecPlan): ExecPlan => {
      const image = plan.setup[0]!.argv.at(-1)!;
      const corrupt: PlanOp = { id: 999_001, kind: 'corrupt', path: image, offset: badOffset, length: 512 };
      const ops = plan.threads[0]!;
      const at = ops.findIndex((op) => op.id === 3);
      return { ...plan, threads: [[...ops.slice(0, at), corrupt, ...ops.slice(at)]] };
    };
    const o = await runCase(new HostTarget({ workRoot, executor: buildExecutor, planHookForTests: inject }), c, info);
    expect(o.kind).toBe('divergence');
    if (o.kind !== 'divergence') return;
    const first = o.divergences[0]!;
    expect(first).toMatchObject({ class: 'wrong-data', op: 3, object: 'd0', offset: badOffset, expectedWriters: [1] });
    expect(['garbage', 'zeroes']).toContain(first.dataClass);
    expect(leftovers()).toEqual([]);
  });

  it('remounts each filesystem before the read-back, and a filesystem that will not mount again is a finding', async () => {
    const { c, info } = built(fsCase);
    let remounts = 0;
    const count = (p: ExecPlan): ExecPlan => {
      remounts = p.threads.flat().filter((op) => op.kind === 'exec' && op.id >= POST_RUN_OP_BASE).length;
      return p;
    };
    expect((await runCase(new HostTarget({ workRoot, executor: buildExecutor, planHookForTests: count }), c, info)).kind).toBe('pass');
    expect(remounts).toBe(1);
    // Test-only: the mount after the program fails (as it would on a damaged filesystem).
    const breakMount = (p: ExecPlan): ExecPlan => ({
      ...p,
      threads: p.threads.map((ops) => ops.map((op) => (op.kind === 'exec' && op.id >= POST_RUN_OP_BASE ? { ...op, argvs: [op.argvs[0]!, ['false']] } : op))),
    });
    const o = await runCase(new HostTarget({ workRoot, executor: buildExecutor, planHookForTests: breakMount }), c, info);
    expect(o.kind).toBe('divergence');
    if (o.kind === 'divergence') expect(o.divergences.map((d) => d.class)).toContain('fsck');
    expect(leftovers()).toEqual([]);
  });

  it('tears everything down when any set-up step fails', async () => {
    const { c, info } = built(fsCase);
    // Count the steps of this case's plan, then fail each in turn (test-only: the step's argv becomes `false`).
    let steps = 0;
    await runCase(new HostTarget({ workRoot, executor: buildExecutor, planHookForTests: (p) => ((steps = p.setup.length), { ...p, threads: [[]] }) }), c, info);
    expect(steps).toBeGreaterThanOrEqual(6);
    for (let k = 0; k < steps; k++) {
      const fail = (p: ExecPlan): ExecPlan => ({ ...p, setup: p.setup.map((s, i) => (i === k ? { ...s, argv: ['false'] } : s)) });
      const o = await runCase(new HostTarget({ workRoot, executor: buildExecutor, planHookForTests: fail }), c, info);
      expect(o.kind, `step ${k}`).toBe('infra-error');
      if (o.kind === 'infra-error') expect(o.message).toMatch(/set-up step/);
      expect(leftovers(), `after failing step ${k}`).toEqual([]);
    }
  }, 300_000);

  it('tears everything down when the run is aborted half-way', async () => {
    const { c, info } = built(fsCase);
    const slow = (p: ExecPlan): ExecPlan => ({ ...p, threads: [[{ id: 999_002, kind: 'sleep', ms: 30_000 }, ...p.threads[0]!]] });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 3000);
    const o = await runCase(new HostTarget({ workRoot, executor: buildExecutor, planHookForTests: slow }), c, info, ac.signal);
    expect(o.kind).not.toBe('pass');
    expect(leftovers()).toEqual([]);
  });
});
