/**
 * `blockfarm bisect FILE [--kernels a,b,c] [--flavour F] [--runs N]
 *  [--signature SIG] [--cross] [--allow-host] [--data-dir D] [--json]`
 *
 * Finds, over a series of kernels oldest first, the first one whose verdict
 * on the case differs from the oldest's (coordinator/triage/bisect.ts):
 * where the finding came in, or went away; repeated runs per version for a
 * flaky finding, and a confidence figure. Without --kernels the series is
 * the fetched Debian kernels of one flavour (default amd64) in package
 * version order (`blockfarm kernels fetch` adds to it). Each kernel runs on
 * its target: a kernel name K means qemu:K; 'model', 'host' and 'qemu:...'
 * are taken as target names as they are. With --signature the finding must
 * be that signature (from the data directory; its recorded reproduction
 * rate tells how many runs a clean verdict needs), and the result goes into
 * its record (a re-test per kernel) and report; otherwise any finding
 * counts. --cross runs the case on every kernel instead of bisecting: the
 * cross-kernel view of which kernels diverge.
 *
 * Exit: 0 done (found or not), 2 bad input, 3 a target refused or too few
 * fetched kernels, 4 no verdict.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { FLAVOURS, compareNewestFirst, fetchedKernels, parseKernelId } from '../../../infra/kernels/index.ts';
import { EXIT } from '../../../model/index.ts';
import {
  type BisectResult, type DirSignatureStore, type Executor, type Finding, type Signature, type SignatureRecord, TargetExecutor, type VersionVerdict, bisect, crossKernel, kernelOfTarget, writeReport,
} from '../../triage/index.ts';
import type { Target } from '../../../worker/targets/target.ts';
import { loadCaseFile, problemLine } from '../case-files.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { formatTable } from '../table.ts';
import { DEFAULT_DATA_DIR, findSignature, startTarget, storeFor } from './triage.ts';

export interface BisectCliOptions {
  kernels?: string;
  flavour?: string;
  runs?: string;
  signature?: string;
  allowHost?: boolean;
  dataDir: string;
  cross?: boolean;
  json?: boolean;
}

/** The target a --kernels entry runs on. */
export function targetForKernel(k: string): string {
  return k === 'model' || k === 'host' || k.includes(':') ? k : `qemu:${k}`;
}

class Refused extends Error {
  constructor(readonly code: number) {
    super('target refused');
  }
}

/** The fetched Debian kernels of a flavour, oldest first (package version order). */
export async function fetchedSeries(flavour: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const ids = (await fetchedKernels(env)).map((k) => k.info.id).filter((id) => parseKernelId(id)?.flavour === flavour);
  return ids.sort(compareNewestFirst).reverse();
}

export async function bisectCommand(file: string, opts: BisectCliOptions, ctx: CliContext): Promise<number> {
  const need = opts.cross ? 1 : 2;
  let kernels: string[];
  if (opts.kernels !== undefined) {
    kernels = opts.kernels.split(',').map((k) => k.trim()).filter(Boolean);
    if (kernels.length < need) {
      ctx.err(`blockfarm bisect: --kernels needs ${opts.cross ? 'a kernel' : 'at least two kernels, oldest first'}`);
      return EXIT.badInput;
    }
  } else {
    const flavour = opts.flavour ?? 'amd64';
    if (!(FLAVOURS as readonly string[]).includes(flavour)) {
      ctx.err(`blockfarm bisect: --flavour is one of ${FLAVOURS.join(', ')}, not '${flavour}'`);
      return EXIT.badInput;
    }
    kernels = await fetchedSeries(flavour);
    if (kernels.length < need) {
      ctx.err(`blockfarm bisect: ${kernels.length ? `only ${kernels.join(', ')} is` : 'no'} ${flavour} kernel${kernels.length === 1 ? '' : 's'} fetched; ${opts.cross ? '' : 'bisection needs two: '}fetch more with 'blockfarm kernels fetch ID' (see 'blockfarm kernels list'), or name them with --kernels`);
      return EXIT.unsupported;
    }
    ctx.err(`bisecting over the fetched ${flavour} kernels, oldest first: ${kernels.join(', ')}`);
  }
  const runs = opts.runs === undefined ? 3 : Number(opts.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    ctx.err(`blockfarm bisect: --runs must be a positive integer, not '${opts.runs}'`);
    return EXIT.badInput;
  }
  const loaded = await loadCaseFile(file);
  if (!loaded.ok) {
    for (const p of loaded.problems) ctx.err(problemLine(file, p));
    return EXIT.badInput;
  }
  let signature: Signature | undefined;
  let rate: number | undefined;
  let record: SignatureRecord | undefined;
  const store = storeFor(opts.dataDir);
  if (opts.signature) {
    const found = await findSignature(store, opts.signature);
    if ('problem' in found) {
      ctx.err(`blockfarm bisect: ${found.problem}`);
      return EXIT.badInput;
    }
    const r = found.record;
    record = r;
    signature = { id: r.id, key: r.key, title: r.title, parts: r.parts, altIds: [...r.altIds, ...r.aliases] };
    if (r.reproduction?.reproduced) rate = r.reproduction.rate;
  }
  const targets: Target[] = [];
  const executorFor = async (k: string): Promise<Executor> => {
    const t = await startTarget(targetForKernel(k), opts.allowHost, ctx, 'bisect');
    if (typeof t === 'number') throw new Refused(t);
    targets.push(t);
    return new TargetExecutor(t);
  };
  const show = (v: VersionVerdict) => ctx.err(`${v.kernel}: ${v.verdict} (${v.reproduced} of ${v.runs} runs${v.infraErrors ? `, ${v.infraErrors} infrastructure errors` : ''})`);
  try {
    if (opts.cross) {
      const pairs: Array<[string, Executor]> = [];
      for (const k of kernels) pairs.push([k, await executorFor(k)]);
      const verdicts = await crossKernel(loaded.theCase, pairs, { runs, ...(signature ? { signature } : {}) });
      if (record) await recordInReport(store, record, { crossKernel: verdicts });
      if (opts.json) ctx.out(JSON.stringify({ file, kernels: verdicts }, null, 2));
      else ctx.out(formatTable(['kernel', 'runs', 'showed it', 'infra errors', 'verdict'], verdicts.map((v) => [v.kernel, String(v.runs), String(v.reproduced), String(v.infraErrors), v.verdict])));
      return verdicts.every((v) => v.verdict === 'unknown') ? EXIT.infra : EXIT.pass;
    }
    const r: BisectResult = await bisect(loaded.theCase, kernels, executorFor, { runsPerVersion: runs, ...(signature ? { signature } : {}), ...(rate !== undefined ? { rate } : {}), onProgress: show });
    if (record) await recordInReport(store, record, { bisect: r });
    if (opts.json) ctx.out(JSON.stringify({ file, ...r }, null, 2));
    else {
      ctx.out(r.message);
      if (r.found) ctx.out(`confidence ${(100 * r.confidence).toFixed(1)}% (a run shows it with rate ${(100 * r.rate).toFixed(0)}%), ${r.executions} runs`);
      ctx.out(formatTable(['kernel', 'runs', 'showed it', 'infra errors', 'verdict'], r.tested.map((v) => [v.kernel, String(v.runs), String(v.reproduced), String(v.infraErrors), v.verdict])));
    }
    return r.tested.filter((v) => v.verdict !== 'unknown').length < 2 ? EXIT.infra : EXIT.pass;
  } catch (err) {
    if (err instanceof Refused) return err.code;
    throw err;
  } finally {
    for (const t of targets) await t.close().catch(() => undefined);
  }
}

/** A signature's record gets a re-test per kernel with a verdict, and its report the table. */
async function recordInReport(store: DirSignatureStore, rec: SignatureRecord, what: { crossKernel?: VersionVerdict[]; bisect?: BisectResult }): Promise<void> {
  const verdicts = what.crossKernel ?? what.bisect?.tested ?? [];
  let r = rec;
  for (const v of verdicts) if (v.verdict !== 'unknown') r = await store.recordRetest(rec.id, { kernel: kernelOfTarget(targetForKernel(v.kernel)), target: targetForKernel(v.kernel), runs: v.runs, reproduced: v.reproduced });
  const dir = store.dir(rec.id);
  const old = JSON.parse(await fsp.readFile(join(dir, 'report.json'), 'utf8').catch(() => '{}')) as { outcome?: Finding; bisect?: BisectResult; crossKernel?: VersionVerdict[] };
  const original = await store.getCase(rec.id, 'original');
  if (!original) return;
  const minimized = await store.getCase(rec.id, 'minimized');
  await writeReport(dir, {
    record: r,
    original,
    ...(minimized ? { minimized } : {}),
    ...(old.outcome ? { outcome: old.outcome } : {}),
    ...((what.bisect ?? old.bisect) ? { bisect: what.bisect ?? old.bisect } : {}),
    ...((what.crossKernel ?? old.crossKernel) ? { crossKernel: what.crossKernel ?? old.crossKernel } : {}),
  });
}

export function registerBisect(program: Command, host: CommandHost): void {
  program
    .command('bisect')
    .description('find the first kernel, oldest first, where a case starts (or stops) showing its finding; --cross: run it on every kernel')
    .argument('<file>', 'a case file (the minimized one, preferably)')
    .option('-k, --kernels <list>', 'kernels oldest first, comma-separated: a name K runs on qemu:K; model, host and qemu:... are target names (default: the fetched Debian kernels, oldest first)')
    .option('--flavour <flavour>', `without --kernels: which fetched kernels (${FLAVOURS.join(', ')})`, 'amd64')
    .option('--runs <n>', 'runs per kernel before calling it clean (more for a flaky finding)', '3')
    .option('--signature <sig>', 'the finding to look for (a signature in the data directory); default: any finding')
    .option('--cross', 'run the case on every kernel and print the table instead of bisecting')
    .option('--allow-host', "allow the host target (this machine's kernel)")
    .option('-d, --data-dir <dir>', 'the data directory (for --signature)', DEFAULT_DATA_DIR)
    .option('--json', 'print one JSON object')
    .action(async (file: string, opts: BisectCliOptions, cmd: Command) => {
      host.setExitCode(await bisectCommand(file, opts, host.context(cmd)));
    });
}
