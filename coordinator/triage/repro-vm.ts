/**
 * Runs a report's repro.c in a QEMU VM booting a fetched kernel: the
 * standalone reproducer on that kernel, with none of blockfarm's executor in
 * the IO path (`blockfarm repro SIG --standalone --target qemu[:ID]`).
 *
 * - repro.c is built here with gcc (liburing linked in statically, glibc
 *   dynamically: the guest userland is this machine's, glibc included);
 * - a fresh VM is restored for the case's disks (the QEMU target's VM
 *   factory), the binary is copied in over the agent, and the case's stack
 *   is set up with the layer modules' own commands (the set-up steps the QEMU
 *   target runs; the guest's blockfarm-exec provides their helpers);
 * - the program runs through the guest's dynamic loader (the copy is not
 *   executable and the guest has no chmod), with the id=path arguments
 *   repro.sh would pass; its output and exit code come back; the VM is
 *   thrown away.
 *
 * Exit codes are repro.c's: 0 the kernel did what the model allows, 1 a
 * divergence; `setupFailed` says which set-up step failed instead.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Case, validateCase } from '../../model/index.ts';
import type { SetupStep } from '../../worker/executor/protocol.ts';
import { compilePlan } from '../../worker/plan/compile.ts';
import { makeSetupEnv } from '../../worker/plan/env.ts';
import { kernelFor, prepareQemu } from '../../worker/targets/qemu/factory.ts';
import type { AgentChannel } from '../../worker/targets/qemu/agent-channel.ts';
import type { DiskGeometry } from '../../worker/targets/qemu/states.ts';
import { ReproUnsupported, reproVars } from './repro-c.ts';
import { reproArgs } from './repro-sh.ts';

const run = promisify(execFile);

/** Where the guest's dynamic loader is (bookworm, x86-64). */
const GUEST_LOADER = '/lib64/ld-linux-x86-64.so.2';
const GUEST_DIR = '/tmp/bfr';

export interface ReproVmOptions {
  /** 'qemu' (the newest fetched kernel) or 'qemu:<kernel>'. */
  target: string;
  /** Tests only: rewrite the set-up steps before they run (a fault the model is not told about). */
  setupHookForTests?: (steps: SetupStep[]) => SetupStep[];
  /** The reproducer is killed after this long. @defaultValue 600000 */
  timeoutMs?: number;
  /** Each line repro.c prints, as it comes. */
  onLine?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export interface ReproVmResult {
  /** The kernel it ran on. */
  kernel: string;
  /** repro.c's exit code (-1: killed, or it did not start). */
  exit: number;
  stdout: string[];
  stderr: string[];
  /** The set-up step that failed (repro.c did not run). */
  setupFailed?: string;
  timedOut?: boolean;
}

/** Build repro.c for the guest: liburing static, glibc dynamic. Throws with gcc's message. */
export async function buildReproForGuest(reproC: string, dir: string): Promise<string> {
  const src = join(dir, 'repro.c');
  const out = join(dir, 'repro');
  await writeFile(src, reproC);
  try {
    await run('gcc', ['-O2', '-o', out, src, '-Wl,-Bstatic', '-luring', '-Wl,-Bdynamic', '-lpthread']);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`repro.c does not build: ${(e.stderr ?? e.message).split('\n').slice(0, 3).join(' ')}`);
  }
  return out;
}

function expand(t: string, vars: Map<string, string>): string {
  return t.replace(/\$\{([A-Za-z0-9_-]+)\}/g, (m, name: string) => {
    const v = vars.get(name);
    if (v === undefined) throw new Error(`set-up refers to \${${name}}, which no earlier step captured`);
    return v;
  });
}

async function setUp(agent: AgentChannel, steps: SetupStep[], vars: Map<string, string>): Promise<string | undefined> {
  for (const s of steps) {
    const r = await agent.exec(s.argv.map((a) => expand(a, vars)), s.stdin !== undefined ? expand(s.stdin, vars) : '');
    if (r.exit !== 0) return `${s.name}: exit ${r.exit}${r.err.length ? `: ${r.err.slice(-2).join(' ')}` : ''}`;
    if (s.capture) vars.set(s.capture, r.out[0] ?? '');
  }
  return undefined;
}

/** Run repro.c for case `c` in a fresh VM of the target's kernel. Throws ReproUnsupported, or an Error for the machine's problems. */
export async function runReproInVm(c: Case, reproC: string, opts: ReproVmOptions): Promise<ReproVmResult> {
  const v = validateCase(c);
  if (!v.ok) throw new ReproUnsupported(`the case is not valid (${v.issues[0]?.message ?? '?'})`);
  const info = v.info;
  const kernel = await kernelFor(opts.target, opts.env);
  const work = await mkdtemp(join(tmpdir(), 'blockfarm-repro-vm-'));
  const { factory } = await prepareQemu({ kernel, ...(opts.env ? { env: opts.env } : {}) });
  try {
    const binary = await readFile(await buildReproForGuest(reproC, work));
    const disks = info.layers.filter((l) => l.kind === 'disk');
    const geoms: DiskGeometry[] = disks.map((d) => ({ logicalBlockSize: d.logicalBlockSize, physicalBlockSize: d.physicalBlockSize ?? d.logicalBlockSize }));
    const cvm = await factory.acquire(geoms, disks.map((d) => d.size), { spare: false });
    try {
      const slot = new Map(disks.map((d, i) => [d.id, i]));
      const env = makeSetupEnv({
        workDir: GUEST_DIR,
        namePrefix: 'bfr-',
        seed: c.seed,
        info,
        disks: 'virtio',
        diskDevice: (id) => cvm.devices[slot.get(id) ?? -1] ?? `/dev/missing-${id}`,
      });
      const compiled = compilePlan(v.value, info, env);
      if (!compiled.ok) throw new ReproUnsupported(compiled.unsupported);
      const steps = opts.setupHookForTests ? opts.setupHookForTests(compiled.plan.setup) : compiled.plan.setup;
      const agent = cvm.vm.agent!;
      const mk = await agent.exec(['mkdir', '-p', GUEST_DIR]);
      if (mk.exit !== 0) throw new Error(`the guest could not make ${GUEST_DIR}`);
      const put = await agent.exec(['sh', '-c', `cat > ${GUEST_DIR}/repro`], binary);
      if (put.exit !== 0) throw new Error(`copying repro into the guest failed: ${put.err.join(' ')}`);
      const vars = new Map<string, string>();
      const failed = await setUp(agent, steps, vars);
      if (failed) return { kernel: kernel.info.id, exit: -1, stdout: [], stderr: [], setupFailed: failed };
      const args = [
        ...reproArgs(v.value, info, env).map((a) => `${a.id}=${expand(a.path, vars)}`),
        ...reproVars(compiled.plan).map((name) => `@${name}=${vars.get(name) ?? ''}`),
      ];
      const started = agent.start([GUEST_LOADER, `${GUEST_DIR}/repro`, ...args], '', { ...(opts.onLine ? { onOut: opts.onLine } : {}) });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        agent.kill(started.id, 9);
      }, opts.timeoutMs ?? 600_000);
      try {
        const r = await started.done;
        return { kernel: kernel.info.id, exit: r.exit, stdout: r.out, stderr: r.err, ...(timedOut ? { timedOut } : {}) };
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await factory.release(cvm);
    }
  } finally {
    await factory.close();
    await rm(work, { recursive: true, force: true });
  }
}
