/**
 * `blockfarm repro SIG [--target T] [--runs N] [--allow-host] [--standalone]
 *  [--data-dir D] [--json]`
 *
 * Runs a signature's case (the minimized one when there is one) on a target,
 * N times, and says how often it shows that finding; the rate goes into the
 * record (and, on a kernel the signature was never seen on, a re-test
 * entry). The target defaults to where the signature was first seen
 * (qemu:<kernel> runs it in a VM in one command, once the QEMU target is
 * there).
 *
 * --standalone runs the report folder's standalone reproducer instead
 * (writing the report first if needed): with --target qemu[:ID], repro.c in
 * a fresh VM of that kernel (coordinator/triage/repro-vm.ts: built here, the
 * stack set up in the guest with the layers' own commands), its output on
 * stdout; otherwise repro.sh on this machine's own kernel, as root, so it
 * needs --allow-host too.
 *
 * Exit: 1 it showed the finding, 0 it did not, 2 bad input, 3 target
 * refused, 4 infrastructure errors only.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type Case, EXIT, type RunOutcome } from '../../../model/index.ts';
import { type DirSignatureStore, ReproUnsupported, type SignatureRecord, TargetExecutor, kernelOfTarget, showsSignature, writeReport } from '../../triage/index.ts';
import { runReproInVm } from '../../triage/repro-vm.ts';
import { TargetRefused } from '../../../worker/targets/target.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { DEFAULT_DATA_DIR, findSignature, startTarget, storeFor } from './triage.ts';

export interface ReproCliOptions {
  target?: string;
  runs?: string;
  allowHost?: boolean;
  standalone?: boolean;
  dataDir: string;
  json?: boolean;
}

function runScript(path: string, ctx: CliContext): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', (d: string) => process.stdout.write(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => process.stderr.write(d));
    child.on('error', reject);
    child.on('close', (code, sig) => {
      if (sig) ctx.err(`blockfarm repro: repro.sh ended by ${sig}`);
      resolve(code ?? 128);
    });
  });
}

export async function reproCommand(sig: string, opts: ReproCliOptions, ctx: CliContext): Promise<number> {
  const runs = opts.runs === undefined ? 3 : Number(opts.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    ctx.err(`blockfarm repro: --runs must be a positive integer, not '${opts.runs}'`);
    return EXIT.badInput;
  }
  const store = storeFor(opts.dataDir);
  const found = await findSignature(store, sig);
  if ('problem' in found) {
    ctx.err(`blockfarm repro: ${found.problem}`);
    return EXIT.badInput;
  }
  const rec = found.record;
  const minimized = await store.getCase(rec.id, 'minimized');
  const theCase = minimized ?? (await store.getCase(rec.id, 'original'));
  if (!theCase) {
    ctx.err(`blockfarm repro: signature ${rec.id} has no case to run`);
    return EXIT.badInput;
  }

  if (opts.standalone && opts.target !== undefined && (opts.target === 'qemu' || opts.target.startsWith('qemu:'))) return reproInVm(rec, theCase, minimized, opts.target, store, ctx);
  if (opts.standalone) {
    if (opts.target !== undefined && opts.target !== 'host') {
      ctx.err('blockfarm repro: --standalone runs repro.c on this machine (target host, through repro.sh) or in a VM (--target qemu[:<kernel>])');
      return EXIT.badInput;
    }
    if (!opts.allowHost) {
      ctx.err("blockfarm repro: --standalone runs the reproducer on this machine's own kernel; pass --allow-host to accept that risk");
      return EXIT.badInput;
    }
    if (process.getuid?.() !== 0) {
      ctx.err('blockfarm repro: repro.sh needs root (loop devices, mkfs, mount)');
      return EXIT.unsupported;
    }
    const dir = store.dir(rec.id);
    const script = join(dir, 'repro.sh');
    const have = await fsp.access(script).then(() => true, () => false);
    if (!have) {
      const original = (await store.getCase(rec.id, 'original')) ?? theCase;
      const w = await writeReport(dir, { record: rec, original, ...(minimized ? { minimized } : {}) });
      if (w.reproUnsupported) {
        ctx.err(`blockfarm repro: no standalone reproducer for ${rec.id}: ${w.reproUnsupported}`);
        return EXIT.unsupported;
      }
    }
    const code = await runScript(script, ctx);
    return code === 0 ? EXIT.pass : code === 1 ? EXIT.finding : code === 2 ? EXIT.badInput : code === 3 ? EXIT.unsupported : EXIT.infra;
  }

  const targetName = opts.target ?? rec.first.target;
  const target = await startTarget(targetName, opts.allowHost, ctx, 'repro');
  if (typeof target === 'number') return target;
  const ex = new TargetExecutor(target);
  const signature = { id: rec.id, key: rec.key, title: rec.title, parts: rec.parts, altIds: [...rec.altIds, ...rec.aliases] };
  const outcomes: RunOutcome[] = [];
  let shown = 0;
  let infra = 0;
  try {
    for (let i = 0; i < runs; i++) {
      const o = await ex.run(theCase);
      outcomes.push(o);
      if (o.kind === 'infra-error' || o.kind === 'unsupported') infra++;
      const hit = showsSignature(o, theCase, signature, 'core');
      if (hit) shown++;
      ctx.err(`run ${i + 1}: ${o.kind}${hit ? ' (shows it)' : ''}${o.kind === 'infra-error' ? `: ${o.message}` : o.kind === 'unsupported' ? `: ${o.reason}` : ''}`);
    }
  } finally {
    await target.close().catch(() => undefined);
  }
  const valid = runs - infra;
  const kernel = targetName === 'host' ? release() : kernelOfTarget(targetName);
  if (valid > 0) {
    await store.setReproduction(rec.id, { runs: valid, reproduced: shown, target: targetName, case: minimized ? 'minimized' : 'original' });
    if (!rec.kernels[kernel]) await store.recordRetest(rec.id, { kernel, target: targetName, runs: valid, reproduced: shown });
  }
  const summary = { signature: rec.id, title: rec.title, target: targetName, kernel, case: minimized ? 'minimized' : 'original', runs, shown, infraErrors: infra };
  if (opts.json) ctx.out(JSON.stringify({ ...summary, outcomes }, null, 2));
  else ctx.out(`${rec.id}: ${rec.title}\n  on ${targetName}: shown in ${shown} of ${valid} runs${infra ? ` (${infra} infrastructure errors)` : ''} of the ${summary.case} case`);
  if (shown) return EXIT.finding;
  return valid ? EXIT.pass : infra && outcomes.every((o) => o.kind === 'unsupported') ? EXIT.unsupported : EXIT.infra;
}

/** --standalone --target qemu[:ID]: the report's repro.c in a fresh VM of that kernel. */
async function reproInVm(rec: SignatureRecord, theCase: Case, minimized: Case | undefined, target: string, store: DirSignatureStore, ctx: CliContext): Promise<number> {
  const dir = store.dir(rec.id);
  const file = join(dir, 'repro.c');
  let reproC = await fsp.readFile(file, 'utf8').catch(() => undefined);
  if (reproC === undefined) {
    const original = (await store.getCase(rec.id, 'original')) ?? theCase;
    const w = await writeReport(dir, { record: rec, original, ...(minimized ? { minimized } : {}) });
    if (w.reproUnsupported) {
      ctx.err(`blockfarm repro: no standalone reproducer for ${rec.id}: ${w.reproUnsupported}`);
      return EXIT.unsupported;
    }
    reproC = await fsp.readFile(file, 'utf8');
  }
  try {
    const r = await runReproInVm(theCase, reproC, { target, onLine: (line) => ctx.out(line) });
    if (r.setupFailed) {
      ctx.err(`blockfarm repro: in the VM of ${r.kernel}, a set-up step failed: ${r.setupFailed}`);
      return EXIT.unsupported;
    }
    for (const l of r.stderr) ctx.err(l);
    ctx.err(`blockfarm repro: repro.c on ${r.kernel} (in a VM) exited ${r.exit}${r.timedOut ? ' (killed: it ran too long)' : ''}`);
    return r.exit === 0 ? EXIT.pass : r.exit === 1 ? EXIT.finding : EXIT.infra;
  } catch (err) {
    if (err instanceof TargetRefused) {
      ctx.err(`blockfarm repro: target '${target}' refused: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof ReproUnsupported) {
      ctx.err(`blockfarm repro: no standalone reproducer for ${rec.id}: ${err.message}`);
      return EXIT.unsupported;
    }
    ctx.err(`blockfarm repro: ${(err as Error).message}`);
    return EXIT.infra;
  }
}

export function registerRepro(program: Command, host: CommandHost): void {
  program
    .command('repro')
    .description("run a signature's case on a target (default: where it was first seen) and say how often it shows; --standalone runs its repro.sh here")
    .argument('<sig>', 'a signature id, or a unique prefix of one')
    .option('-t, --target <name>', 'model, host (with --allow-host), qemu:<kernel>')
    .option('--runs <n>', 'how many times', '3')
    .option('--standalone', "run the report's repro.c: in a VM with --target qemu[:ID], else repro.sh on this machine (root, --allow-host)")
    .option('--allow-host', "allow running on this machine's own kernel")
    .option('-d, --data-dir <dir>', 'the data directory', DEFAULT_DATA_DIR)
    .option('--json', 'print one JSON object')
    .action(async (sig: string, opts: ReproCliOptions, cmd: Command) => {
      host.setExitCode(await reproCommand(sig, opts, host.context(cmd)));
    });
}
