/**
 * Host teardown when the executor could not finish its own: run the undo
 * steps of set-up steps that succeeded and were not undone, newest first,
 * then sweep for loop devices backed by files under the run directory and
 * mounts under it. Only things this run created can match: the run
 * directory is fresh and unique.
 */
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { ExecEvent, ExecPlan } from '../../executor/protocol.ts';

const run = promisify(execFile);

function substitute(argv: string[], vars: Map<string, string>): string[] | undefined {
  const out: string[] = [];
  for (const a of argv) {
    let missing = false;
    out.push(a.replace(/\$\{([A-Za-z0-9_-]+)\}/g, (_, name: string) => vars.get(name) ?? ((missing = true), '')));
    if (missing) return undefined;
  }
  return out;
}

export async function undoRemaining(plan: ExecPlan, events: ExecEvent[]): Promise<void> {
  const vars = new Map<string, string>();
  const done: number[] = [];
  const undone = new Set<number>();
  for (const e of events) {
    if (e.ev === 'setup' && e.ok) {
      done.push(e.step);
      const cap = plan.setup[e.step]?.capture;
      if (cap && e.captured !== undefined) vars.set(cap, e.captured);
    } else if (e.ev === 'undo' && e.ok) undone.add(e.step);
  }
  for (const step of done.reverse()) {
    if (undone.has(step)) continue;
    const undo = plan.setup[step]?.undo;
    if (!undo) continue;
    const argv = substitute(undo, vars);
    if (!argv) continue;
    await run(argv[0]!, argv.slice(1), { timeout: 60_000 }).catch(() => undefined);
  }
}

/** Loop devices backed by a file under runDir, or (transitively) by one of those loop devices; top-most first. */
async function ourLoops(runDir: string): Promise<string[]> {
  const backing = new Map<string, string>();
  for (const name of await readdir('/sys/block').catch(() => [] as string[])) {
    if (!name.startsWith('loop')) continue;
    const b = (await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(() => '')).trim();
    if (b) backing.set(`/dev/${name}`, b);
  }
  const ours: string[] = [];
  for (const [dev, b] of backing) if (b.startsWith(`${runDir}/`)) ours.push(dev);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [dev, b] of backing)
      if (!ours.includes(dev) && ours.includes(b)) {
        ours.unshift(dev);
        grew = true;
      }
  }
  return ours;
}

async function ourMounts(runDir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p.startsWith(`${runDir}/`));
  return points.sort((a, b) => b.length - a.length);
}

/** Unmount and detach what is left under runDir; returns what could not be removed. */
export async function sweepRunDir(runDir: string): Promise<string[]> {
  for (let round = 0; round < 4; round++) {
    const mounts = await ourMounts(runDir);
    const loops = await ourLoops(runDir);
    if (!mounts.length && !loops.length) return [];
    for (const m of mounts) await run('umount', [m], { timeout: 60_000 }).catch(() => undefined);
    for (const l of loops) await run('losetup', ['-d', l], { timeout: 60_000 }).catch(() => undefined);
  }
  return [...(await ourMounts(runDir)).map((m) => `mount ${m}`), ...(await ourLoops(runDir)).map((l) => `loop ${l}`)];
}
