/**
 * The executor against fio on the same IO (issue 3): 4 KiB random writes to a
 * file, each verified by reading it back (fio: psync, randwrite,
 * verify_backlog=1; the executor: the same write-then-read pairs in one
 * thread), on ext4 and xfs over a loop device, buffered and O_DIRECT. The
 * figure is the executor's ops/s, the peer fio's ops/s on the same file in
 * the same run; the goal is the executor within 15% of fio (ratio >= 0.85),
 * the median of several alternating runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { buildExecutor } from '../worker/executor/build.ts';
import type { ExecPlan, PlanOp } from '../worker/executor/protocol.ts';
import type { Benchmark, Row } from './harness.ts';

const BLOCKS = 4096; // 16 MiB of 4 KiB blocks per run
const FILE_SIZE = BLOCKS * 4096;
const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A deterministic permutation of the blocks (the same order for every run of the executor). */
function blockOrder(seed: number): number[] {
  const order = Array.from({ length: BLOCKS }, (_, i) => i);
  let x = seed >>> 0 || 1;
  for (let i = order.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function executorOps(file: string, direct: boolean): PlanOp[] {
  const ops: PlanOp[] = [];
  let id = 1;
  for (const b of blockOrder(7)) {
    const io = { path: file, offset: b * 4096, length: 4096, via: 'psync' as const, nowait: false, direct, dsync: false, vectors: 1, buffer: { placement: 'heap' as const, align: 0 } };
    ops.push({ id: id++, kind: 'write', ...io });
    ops.push({ id: id++, kind: 'read', ...io });
  }
  return ops;
}

/** ops/s of the executor on the program, from its own per-thread stats (the op loop only, no start-up). */
function runExecutor(exe: string, file: string, direct: boolean): { opsPerSec: number; verified: boolean } {
  const ops = executorOps(file, direct);
  const plan: ExecPlan = {
    version: 1, seed: 1, opTimeoutMs: 60_000, setup: [], geometry: [], threads: [ops], final: [], checks: [],
    candidates: ops.filter((o) => o.kind === 'write').map((o) => ({ op: o.id, delta: 0 })),
  };
  const r = spawnSync(exe, [], { input: JSON.stringify(plan), env: { ...process.env, BLOCKFARM_EXEC_STATS: '1' }, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`executor exit ${r.status}: ${r.stderr.toString().slice(-300)}`);
  const m = /stats: thread 0: (\d+) ops in ([\d.]+) ms/.exec(r.stderr.toString());
  if (!m) throw new Error('executor printed no stats');
  // Verification: every read must decode to exactly the write before it.
  let verified = true;
  for (const line of r.stdout.toString().split('\n')) {
    if (!line.includes('"ev":"result"')) continue;
    const e = JSON.parse(line) as { op: number; ret: number; data?: Array<{ length: number; src: unknown }> };
    if (e.op % 2 === 0 && !(e.ret === 4096 && e.data?.length === 1 && JSON.stringify(e.data[0]!.src) === JSON.stringify({ op: e.op - 1, delta: 0 }))) verified = false;
  }
  return { opsPerSec: (Number(m[1]) / Number(m[2])) * 1000, verified };
}

/** fio's ops/s (writes plus verify reads) over its job runtime. */
function runFio(file: string, direct: boolean): number {
  const out = execFileSync('fio', [
    '--name=bench', `--filename=${file}`, '--rw=randwrite', '--bs=4k', '--ioengine=psync', `--size=${FILE_SIZE}`,
    `--direct=${direct ? 1 : 0}`, '--verify=crc32c', '--verify_backlog=1', '--randrepeat=1', '--norandommap=0',
    '--verify_state_save=0', '--output-format=json',
  ]).toString();
  const job = (JSON.parse(out.slice(out.indexOf('{'))) as { jobs: Array<{ job_runtime: number; write: { total_ios: number }; read: { total_ios: number } }> }).jobs[0]!;
  return ((job.write.total_ios + job.read.total_ios) / job.job_runtime) * 1000;
}

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (loop devices, mkfs, mount)';
  if (!existsSync('/dev/loop-control')) return 'no loop devices';
  for (const t of ['fio', 'mkfs.ext4', 'mkfs.xfs', 'losetup']) if (spawnSync('which', [t]).status !== 0) return `${t} is not installed`;
  return undefined;
}

async function measureStack(fsType: 'ext4' | 'xfs'): Promise<Row[]> {
  const exe = await buildExecutor();
  const dir = mkdtempSync('/var/tmp/blockfarm-bench-exec-');
  const img = `${dir}/disk.img`;
  const mnt = `${dir}/mnt`;
  mkdirSync(mnt);
  execFileSync('truncate', ['-s', String(512 * 1024 * 1024), img]);
  const dev = execFileSync('losetup', ['--find', '--show', img]).toString().trim();
  try {
    execFileSync(fsType === 'ext4' ? 'mkfs.ext4' : 'mkfs.xfs', fsType === 'ext4' ? ['-q', '-F', '-E', 'nodiscard', dev] : ['-q', '-f', '-K', dev]);
    execFileSync('mount', [dev, mnt]);
    try {
      const rows: Row[] = [];
      for (const direct of [false, true]) {
        const file = `${mnt}/bench-${direct ? 'direct' : 'buffered'}`;
        execFileSync('fallocate', ['-l', String(FILE_SIZE), file]);
        const mine: number[] = [];
        const theirs: number[] = [];
        let verified = true;
        runExecutor(exe, file, direct); // warm-up
        for (let i = 0; i < RUNS; i++) {
          const e = runExecutor(exe, file, direct);
          verified &&= e.verified;
          mine.push(e.opsPerSec);
          theirs.push(runFio(file, direct));
        }
        const figure = median(mine);
        const peer = median(theirs);
        rows.push({
          name: `executor vs fio: loop + ${fsType}, ${direct ? 'O_DIRECT' : 'buffered'}, 4k randwrite+verify`,
          figure,
          unit: 'ops/s',
          peer: { name: 'fio psync verify_backlog=1', figure: peer },
          goal: { min: 0.85 * peer, text: 'within 15% of fio (ratio >= 0.85)' },
          note: `median of ${RUNS} alternating runs; executor ${Math.round(Math.min(...mine))}..${Math.round(Math.max(...mine))}, fio ${Math.round(Math.min(...theirs))}..${Math.round(Math.max(...theirs))}; every executor read verified: ${verified}`,
        });
        if (!verified) throw new Error('executor reads did not verify');
      }
      return rows;
    } finally {
      execFileSync('umount', [mnt]);
    }
  } finally {
    execFileSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  }
}

export const benchmarks: Benchmark[] = (['ext4', 'xfs'] as const).map((fsType) => ({
  name: `executor vs fio on loop + ${fsType}`,
  description: `4 KiB random write-and-verify on a file on ${fsType} over a loop device, buffered and direct, executor beside fio`,
  async run(): Promise<Row[]> {
    const why = skipReason();
    if (why) return [{ name: `executor vs fio: loop + ${fsType}`, figure: 0, unit: 'ops/s', note: `skipped: ${why}` }];
    return measureStack(fsType);
  },
}));
