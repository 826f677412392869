/**
 * End to end on this machine's kernel (root and loop devices; skipped with
 * the reason otherwise): a divergence caused by a fault the model is not
 * told about is found by the host target, minimized there to its few ops
 * and one layer, filed and reported, and the report's repro.c fails with the
 * fault and passes without it.
 *
 * The fault (test-only, through HostTarget's planHookForTests, as
 * test/host/host-target.test.ts does): while the program sleeps at least
 * half a second, 4 KiB of disk d0's backing image are overwritten with
 * noise. The QEMU variant of this test belongs with the QEMU target.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaseInput, validateCase } from '../../model/index.ts';
import { TargetExecutor, fileFinding, processSignature } from '../../coordinator/triage/index.ts';
import { DirSignatureStore } from '../../coordinator/triage/store.ts';
import { signaturesRoot } from '../../coordinator/triage/files.ts';
import { buildExecutor } from '../../worker/executor/build.ts';
import type { ExecPlan, PlanOp } from '../../worker/executor/protocol.ts';
import { HostTarget } from '../../worker/targets/host/host-target.ts';

const root = process.getuid?.() === 0;
const skip = !root
  ? 'not root'
  : !existsSync('/dev/loop-control')
    ? 'no /dev/loop-control'
    : spawnSync('gcc', ['--version']).status !== 0 || !existsSync('/usr/include/liburing.h')
      ? 'gcc or liburing-dev missing'
      : undefined;
if (skip) console.log(`skipping the end-to-end triage test on this kernel: ${skip}`);

const MiB = 1024 * 1024;
const BAD = 1 * MiB + 8192;

/** Test-only fault: after every sleep of >= 500 ms, noise over [BAD, BAD+4096) of d0's image. */
function injectFault(plan: ExecPlan): ExecPlan {
  const image = plan.setup.find((s) => s.name === 'image for disk d0')?.argv.at(-1);
  if (!image) return plan;
  let n = 0;
  const threads = plan.threads.map((ops) =>
    ops.flatMap((op): PlanOp[] => (op.kind === 'sleep' && op.ms >= 500 ? [op, { id: 990_000 + n++, kind: 'corrupt', path: image, offset: BAD, length: 4096 }] : [op])),
  );
  return { ...plan, threads };
}

/** Two disks, ext4 with a file on the second, two threads of noise; the read of d0 after the sleep sees the damage. */
const original: CaseInput = {
  format: 'blockfarm-case/1',
  name: 'host-fault-e2e',
  seed: 31337,
  stack: {
    layers: [
      { id: 'd0', kind: 'disk', size: 16 * MiB },
      { id: 'd1', kind: 'disk', size: 64 * MiB },
      { id: 'fs1', kind: 'fs', on: 'd1', type: 'ext4' },
      { id: 'f1', kind: 'file', on: 'fs1', name: 'f1', size: 0 },
    ],
  },
  program: {
    threads: [
      {
        ops: [
          { kind: 'write', id: 1, target: 'd0', offset: 0, length: 65536, direct: true },
          { kind: 'write', id: 2, target: 'd0', offset: 1 * MiB, length: 65536, direct: true, via: 'pvec', vectors: 4 },
          { kind: 'read', id: 3, target: 'd0', offset: 0, length: 65536 },
          { kind: 'fsync', id: 4, target: 'd0' },
          { kind: 'write', id: 5, target: 'd0', offset: 4 * MiB, length: 8192, via: 'io_uring' },
          { kind: 'sleep', id: 6, ms: 800 },
          { kind: 'read', id: 7, target: 'd0', offset: 4 * MiB, length: 8192 },
          { kind: 'read', id: 8, target: 'd0', offset: 1 * MiB, length: 65536, direct: true, via: 'io_uring', vectors: 2 },
          { kind: 'barrier', id: 9, name: 'end' },
        ],
      },
      {
        ops: [
          { kind: 'write', id: 10, target: 'f1', offset: 0, length: 16384 },
          { kind: 'fsync', id: 11, target: 'f1' },
          { kind: 'read', id: 12, target: 'f1', offset: 0, length: 16384, via: 'pvec', vectors: 2 },
          { kind: 'write', id: 13, target: 'f1', offset: 4096, length: 100 },
          { kind: 'barrier', id: 14, name: 'end' },
          { kind: 'read', id: 15, target: 'f1', offset: 0, length: 8192 },
        ],
      },
    ],
  },
};

interface Ran {
  code: number | null;
  stdout: string;
}

function run(exe: string, args: string[], onLine?: (line: string, child: ChildProcess) => void): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) onLine?.(l, child);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

describe.skipIf(skip)('triage end to end on this kernel', () => {
  let base = '';
  beforeAll(async () => {
    base = mkdtempSync('/var/tmp/blockfarm-triage-e2e-');
    await buildExecutor();
  }, 300_000);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('finds, minimizes and reports an injected fault; repro.c fails with it and passes without', async () => {
    const v = validateCase(original);
    if (!v.ok) throw new Error(JSON.stringify(v.issues));
    const target = new HostTarget({ workRoot: join(base, 'host'), executor: buildExecutor, planHookForTests: injectFault, caseTimeoutMs: 120_000 });
    const executor = new TargetExecutor(target);

    // Found: the host target with the fault shows a wrong-data divergence on op 8.
    const first = await executor.run(v.value);
    expect(first.kind, JSON.stringify(first)).toBe('divergence');
    const data = join(base, 'data');
    const store = new DirSignatureStore(signaturesRoot(data));
    const filed = await fileFinding(store, { outcome: first, theCase: v.value, target: 'host', kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim() });
    expect(filed?.signature.parts).toMatchObject({ class: 'wrong-data', op: 'read', top: 'disk' });

    // Minimized on the same target, then reported.
    const p = await processSignature(store, data, filed!.record.id, { executor, minimize: { confirmRuns: 2, maxExecutions: 300 } });
    const m = p.minimize!;
    expect(m.reproduced).toBe(true);
    const ops = m.minimized.program.threads.flatMap((t) => t.ops);
    expect(ops.length).toBeLessThanOrEqual(3);
    expect(m.minimized.program.threads).toHaveLength(1);
    expect(m.minimized.stack.layers.map((l) => l.id)).toEqual(['d0']);
    expect(ops.map((o) => o.kind)).toEqual(expect.arrayContaining(['sleep', 'read']));
    expect(m.finalRate.reproduced).toBe(m.finalRate.runs);
    expect(readdirSync(p.report.dir)).toEqual(expect.arrayContaining(['report.md', 'repro.c', 'repro.sh', 'minimized.json']));
    console.log(`minimized in ${m.executions} runs on the host (${(m.elapsedMs / 1000).toFixed(1)} s): ${ops.map((o) => `${o.id}:${o.kind}`).join(' ')}`);

    // repro.c: passes on a clean device, fails when the image is damaged during the sleep.
    const dir = mkdtempSync(join(base, 'repro-'));
    const exe = join(dir, 'repro');
    execFileSync('gcc', ['-O2', '-o', exe, join(p.report.dir, 'repro.c'), '-luring', '-lpthread']);
    const img = join(dir, 'd0.img');
    execFileSync('truncate', ['-s', String(16 * MiB), img]);
    const dev = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
    try {
      const clean = await run(exe, [`d0=${dev}`]);
      expect(clean.code, clean.stdout).toBe(0);
      const sleepAt = ops.findIndex((o) => o.kind === 'sleep');
      const before = sleepAt > 0 ? `op ${ops[sleepAt - 1]!.id} ` : 'kernel: ';
      const faulty = await run(exe, [`d0=${dev}`], (line) => {
        if (!line.startsWith(before)) return;
        const fd = openSync(img, 'r+');
        writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, BAD);
        fsyncSync(fd);
        closeSync(fd);
      });
      expect(faulty.code, faulty.stdout).toBe(1);
      expect(faulty.stdout).toMatch(/DIVERGENCE: at offset \d+ of 'd0' the model allows .*; got bytes no op wrote/);
    } finally {
      execFileSync('losetup', ['-d', dev]);
    }
    expect(readFileSync(join(p.report.dir, 'report.md'), 'utf8')).toMatch(/## The minimized case/);
  }, 900_000);
});
