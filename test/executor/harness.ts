/**
 * Running the real executor in tests: build it once, feed it a plan, collect
 * its events. Plus the set-up steps the tests use (sparse files, loop devices,
 * filesystems) and leak checks that look only at what lives under the test's
 * own temporary directory, since other tests may hold loop devices at the
 * same time.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DecodedRun, ExecEvent, ExecPlan, PlanIo, PlanOp, SetupStep } from '../../worker/executor/protocol.ts';
import { ExecutorBuildError, buildExecutor } from '../../worker/executor/build.ts';

const run = promisify(execFile);

export const isRoot = process.getuid?.() === 0;

/**
 * Why the executor cannot be built here (no gcc, no liburing), or undefined.
 * Only a missing tool skips the tests; a source that does not compile fails them.
 */
export const cannotBuild: string | undefined = await buildExecutor().then(
  () => undefined,
  (e: unknown) => {
    if (e instanceof ExecutorBuildError && e.missing) return e.message;
    throw e;
  },
);
if (cannotBuild) console.log(`skipping the executor tests: ${cannotBuild}`);
if (!cannotBuild && !isRoot) console.log('skipping the executor tests that need root (loop devices, mounts, drop_caches)');
/** Tests that need only the binary; and those that also need root. */
export const noBinary = !!cannotBuild;
export const noRoot = !!cannotBuild || !isRoot;

export interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  events: ExecEvent[];
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Kill (SIGKILL) after this long; a hung executor must not hang the test run. @defaultValue 120000 */
  killAfterMs?: number;
  /** Called for every event as it arrives, with the child (to signal it mid-run). */
  onEvent?: (ev: ExecEvent, child: ChildProcess) => void;
  args?: string[];
}

export function executor(): Promise<string> {
  return buildExecutor();
}

/** Run one plan (an object, or raw text for malformed input). */
export async function runPlan(plan: ExecPlan | string, opts: RunOptions = {}): Promise<RunOutcome> {
  const bin = await executor();
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, opts.args ?? [], { stdio: ['pipe', 'pipe', 'pipe'] });
    const events: ExecEvent[] = [];
    let stderr = '';
    let pending = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 120_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!line) continue;
        const ev = JSON.parse(line) as ExecEvent;
        events.push(ev);
        opts.onEvent?.(ev, child);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, events, stderr, ms: Date.now() - t0 });
    });
    child.stdin.on('error', () => {}); // it may exit before reading everything (bad plan)
    child.stdin.end(typeof plan === 'string' ? plan : JSON.stringify(plan));
  });
}

/** Query the binary's --pattern / --decode modes, one JSON per line. */
export async function queryTool<Q, A>(mode: '--pattern' | '--decode', queries: Q[]): Promise<A[]> {
  const bin = await executor();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [mode], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${mode} exited ${code}`));
      resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as A));
    });
    child.stdin.end(queries.map((q) => JSON.stringify(q)).join('\n') + '\n');
  });
}

export function plan(p: Partial<ExecPlan>): ExecPlan {
  return { version: 1, seed: 12345, opTimeoutMs: 30_000, setup: [], geometry: [], threads: [], final: [], candidates: [], checks: [], ...p };
}

type ResultEvent = Extract<ExecEvent, { ev: 'result' }>;
type FinalEvent = Extract<ExecEvent, { ev: 'final' }>;

export function results(o: RunOutcome): Map<number, ResultEvent> {
  const m = new Map<number, ResultEvent>();
  for (const e of o.events) if (e.ev === 'result') m.set(e.op, e);
  return m;
}

export function result(o: RunOutcome, op: number): ResultEvent {
  const r = results(o).get(op);
  if (!r) throw new Error(`no result for op ${op}; events:\n${o.events.map((e) => JSON.stringify(e)).join('\n')}\n${o.stderr}`);
  return r;
}

export function finals(o: RunOutcome): Map<string, FinalEvent> {
  const m = new Map<string, FinalEvent>();
  for (const e of o.events) if (e.ev === 'final') m.set(e.id, e);
  return m;
}

export function eventsOf<K extends ExecEvent['ev']>(o: RunOutcome, ev: K): Array<Extract<ExecEvent, { ev: K }>> {
  return o.events.filter((e): e is Extract<ExecEvent, { ev: K }> => e.ev === ev);
}

export function done(o: RunOutcome): Extract<ExecEvent, { ev: 'done' }> | undefined {
  return eventsOf(o, 'done')[0];
}

/** A human-readable dump for assertion messages. */
export function dump(o: RunOutcome): string {
  return `exit ${o.code} ${o.signal ?? ''}\n${o.events.map((e) => JSON.stringify(e)).join('\n')}\n--- stderr\n${o.stderr}`;
}

/** The source a run list gives byte `at` ('none' when no run covers it). */
export function srcAt(runs: DecodedRun[], at: number): string {
  for (const r of runs) if (at >= r.offset && at < r.offset + r.length) return typeof r.src === 'string' ? r.src : `op${r.src.op}${r.src.delta ? `@${r.src.delta}` : ''}`;
  return 'none';
}

/** Runs as compact strings, e.g. ["0+4096 op1", "4096+100 zero"]. */
export function compact(runs: DecodedRun[]): string[] {
  return runs.map((r) => `${r.offset}+${r.length} ${typeof r.src === 'string' ? r.src : `op${r.src.op}${r.src.delta ? `@${r.src.delta}` : ''}`}`);
}

// ---------------------------------------------------------------- ops

export function io(
  id: number,
  kind: 'read' | 'write',
  p: string,
  offset: number,
  length: number,
  extra: Partial<PlanIo> = {},
): PlanIo {
  return { id, kind, path: p, offset, length, via: 'psync', nowait: false, direct: false, dsync: false, vectors: 1, buffer: { placement: 'heap', align: 0 }, ...extra };
}

// ---------------------------------------------------------------- set-up steps

export async function tempDir(tag: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `bf-exec-${tag}-`));
}

export function sparseFile(name: string, file: string, size: string): SetupStep {
  return { name, argv: ['truncate', '-s', size, file], undo: ['rm', '-f', file] };
}

/** A loop device over `file`, captured as ${name}, detached by its undo. */
export function loopDevice(name: string, file: string, opts: { sectorSize?: number; directIo?: boolean } = {}): SetupStep {
  const argv = ['losetup', '--find', '--show'];
  if (opts.sectorSize) argv.push('--sector-size', String(opts.sectorSize));
  if (opts.directIo !== undefined) argv.push(`--direct-io=${opts.directIo ? 'on' : 'off'}`);
  argv.push(file);
  return { name: `loop ${name}`, argv, capture: name, undo: ['losetup', '-d', `\${${name}}`] };
}

export function mkfs(kind: 'ext4' | 'xfs' | 'btrfs', dev: string): SetupStep {
  const argv = kind === 'ext4' ? ['mkfs.ext4', '-q', '-F', dev] : kind === 'xfs' ? ['mkfs.xfs', '-q', '-f', dev] : ['mkfs.btrfs', '-q', '-f', dev];
  return { name: `mkfs ${kind}`, argv };
}

export function mountSteps(kind: string, dev: string, mnt: string): SetupStep[] {
  return [
    { name: 'mkdir mnt', argv: ['mkdir', '-p', mnt], undo: ['rmdir', mnt] },
    { name: `mount ${kind}`, argv: ['mount', '-t', kind, dev, mnt], undo: ['umount', mnt] },
  ];
}

// ---------------------------------------------------------------- leak checks

interface LoopInfo {
  name: string;
  'back-file': string | null;
}

export async function loopDevices(): Promise<LoopInfo[]> {
  const { stdout } = await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE']);
  if (!stdout.trim()) return [];
  return (JSON.parse(stdout) as { loopdevices: LoopInfo[] }).loopdevices;
}

/** Loop devices whose backing file lives under dir (only those can be ours). */
export async function loopsUnder(dir: string): Promise<string[]> {
  return (await loopDevices()).filter((l) => l['back-file']?.startsWith(dir)).map((l) => l.name);
}

export async function mountsUnder(dir: string): Promise<string[]> {
  const { stdout } = await run('findmnt', ['--list', '--noheadings', '--output', 'TARGET']);
  return stdout
    .split('\n')
    .map((s) => s.trim())
    .filter((t) => t.startsWith(dir));
}

/** After a test: nothing of ours may remain. Cleans up anyway so one failure does not cascade. */
export async function leftovers(dir: string): Promise<{ loops: string[]; mounts: string[] }> {
  const loops = await loopsUnder(dir);
  const mounts = await mountsUnder(dir);
  return { loops, mounts };
}

export async function cleanup(dir: string): Promise<void> {
  for (const m of (await mountsUnder(dir)).reverse()) await run('umount', ['-l', m]).catch(() => {});
  for (const l of await loopsUnder(dir)) await run('losetup', ['-d', l]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}

export async function hasTool(name: string): Promise<boolean> {
  const { access, constants } = await import('node:fs/promises');
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].filter(Boolean);
  for (const d of dirs) {
    try {
      await access(path.join(d, name), constants.X_OK);
      return true;
    } catch {
      // not in this one
    }
  }
  return false;
}

export async function filesystemSupported(kind: string): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  const fs = await readFile('/proc/filesystems', 'utf8');
  return fs.split('\n').some((l) => l.trim().split(/\s+/).pop() === kind);
}
