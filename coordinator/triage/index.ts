/**
 * Triage: what happens to a finding after a worker reports it.
 *
 * THE API (what the farm's triage queue and the CLI call)
 *
 *   Signatures (./signature.ts)
 *     signatureOf(outcome, theCase?, kernelLog?) -> Signature
 *         { id, key, title, parts, altIds }. id is `<slug>-<12 hex>`, a safe
 *         file name; no offsets, op ids, sizes, addresses or pids in it.
 *     allSignatures(outcome, theCase?, kernelLog?) -> Signature[]   primary first
 *     showsSignature(outcome, theCase, signature, 'core' | 'exact') -> boolean
 *     kernelOfTarget(target, hostRelease?) -> kernel name ('qemu:X' -> 'X')
 *
 *   Store (./store.ts): interface SignatureStore, with MemorySignatureStore,
 *   DirSignatureStore(signaturesRoot(dataDir)) and, for the farm,
 *   RedisSignatureStore (./redis-store.ts: Redis mirrored into the same files).
 *     record({ signature, target, kernel?, kernelVersion?, at?, campaign?, caseId?, theCase? })
 *         -> { record, isNew, newTarget, newKernel, mergedFrom? }
 *     get(id) / list() / setStatus(id, 'new'|'reported'|'fixed'|'invalid'|'suppressed', { fixedIn?, note? })
 *     setReproduction(id, { runs, reproduced, target, case }) / recordRetest(id, { kernel, target, runs, reproduced })
 *     alias(from, into) / putCase(id, 'original'|'minimized', case) / getCase(id, role)
 *     signaturesToRetest(store, kernel) -> [{ record, theCase, role }]   open signatures to run on a new kernel
 *
 *   Running cases (./executor.ts): interface Executor { name; run(case, signal?) -> Promise<RunOutcome> }.
 *     TargetExecutor(target) runs in process; QueueExecutor (./queue-executor.ts)
 *     queues the case on exec-<target> for the farm's workers and resolves with
 *     the outcome. Concurrent run() calls allowed.
 *
 *   Minimization (./minimize.ts, ./slice.ts)
 *     minimize(executor, case, { signature?, match?, confirmRuns?, policy?, concurrency?,
 *              maxExecutions?, maxMs?, onProgress?, signal? }) -> MinimizeResult
 *         { minimized, signature, minimizedSignature, originalRate, finalRate, policy,
 *           executions, stages, budgetExhausted, outcome, ... }
 *     slice(pred, items, { concurrency?, shouldStop? }) -> the 1-minimal sublist (generic ddmin)
 *
 *   Reports (./report.ts; reproducers ./repro-c.ts, ./repro-sh.ts)
 *     writeReport(dir, { record, original, minimized?, minimize?, outcome?, kernelLog?, crossKernel?, bisect? })
 *         -> { dir, files, reproUnsupported? }   (dir: signatureDir(signaturesRoot(dataDir), id))
 *
 *   Kernels (./bisect.ts)
 *     crossKernel(case, [[kernel, executor], ...], { runs?, signature? }) -> VersionVerdict[]
 *     bisect(case, orderedKernels, kernel => executor, { runsPerVersion?, signature? }) -> BisectResult
 *
 *   The whole pipeline for one finding, as the farm's triage consumer runs it:
 *     fileFinding(store, finding)            dedup; new -> worth minimizing
 *     processSignature(store, dataDir, id, { executor, ... })
 *                                            minimize, measure the rate, write the report
 *                                            folder with its reproducers
 *
 * Layout: <data>/reports/<id>/ holds signature.json (the record), case.json,
 * minimized.json, report.md, report.json, repro.sh, repro.c, console.log.
 */
import { type Case, type Observation, type RunOutcome, validateCase } from '../../model/index.ts';
import type { VersionVerdict } from './bisect.ts';
import { crossKernel } from './bisect.ts';
import { type Executor, observationOf } from './executor.ts';
import { signatureDir, signaturesRoot } from './files.ts';
import { type MinimizeOptions, type MinimizeResult, minimize } from './minimize.ts';
import { type ReportFiles, writeReport } from './report.ts';
import { type Finding, type Signature, isFinding, kernelOfTarget, signatureOf } from './signature.ts';
import type { RecordResult, SignatureRecord, SignatureStore } from './store.ts';

export * from './signature.ts';
export * from './store.ts';
export * from './executor.ts';
export * from './minimize.ts';
export * from './slice.ts';
export * from './report.ts';
export * from './bisect.ts';
export { signatureDir, signaturesRoot } from './files.ts';
export { RedisSignatureStore, withNewerFileChanges } from './redis-store.ts';
export { QueueExecutor } from './queue-executor.ts';
export { generateReproC, ReproUnsupported } from './repro-c.ts';
export { generateReproSh } from './repro-sh.ts';
export { caseExpectations } from './expectations.ts';

export interface FindingInput {
  outcome: RunOutcome;
  theCase: Case;
  target: string;
  /** Defaults to kernelOfTarget(target). */
  kernel?: string;
  kernelVersion?: string;
  /** Kernel log lines of the run, if the caller has them (alternative titles of kernel reports). */
  kernelLog?: string | readonly string[];
  campaign?: string;
  caseId?: string;
  at?: number;
}

export interface FiledFinding extends RecordResult {
  signature: Signature;
}

/** Sign and file one finding (a divergence, crash or hang); undefined for other outcomes. */
export async function fileFinding(store: SignatureStore, f: FindingInput): Promise<FiledFinding | undefined> {
  if (!isFinding(f.outcome)) return undefined;
  const signature = signatureOf(f.outcome, f.theCase, f.kernelLog);
  const r = await store.record({
    signature,
    target: f.target,
    kernel: f.kernel ?? kernelOfTarget(f.target),
    ...(f.kernelVersion ? { kernelVersion: f.kernelVersion } : {}),
    ...(f.at !== undefined ? { at: f.at } : {}),
    ...(f.campaign !== undefined ? { campaign: f.campaign } : {}),
    ...(f.caseId !== undefined ? { caseId: f.caseId } : {}),
    theCase: f.theCase,
  });
  return { ...r, signature };
}

export interface ProcessOptions {
  /** Where candidates run (the farm: its queues, many at once). */
  executor: Executor;
  minimize?: Omit<MinimizeOptions, 'signature'>;
  /** Skip minimization (the report then shows the original case). */
  noMinimize?: boolean;
  /** A minimization already done (by the caller): filed as it is, not run again. */
  minimized?: MinimizeResult;
  /** Also run the minimized case on these kernels for the report. */
  crossKernel?: Array<[string, Executor]>;
  kernelLog?: string;
  /** The run that showed it, if the caller has it (else the minimizer's). */
  outcome?: Finding;
  /** What the target observed in that run (else what the executor recorded for the minimizer's run). */
  observation?: Observation;
  /** The .config of the kernel it was found on, for the report. */
  kernelConfig?: string;
}

export interface Processed {
  record: SignatureRecord;
  minimize?: MinimizeResult;
  crossKernel?: VersionVerdict[];
  report: ReportFiles;
}

/**
 * Minimize the signature's case on `executor`, record the minimized case and
 * its reproduction rate, alias the minimized case's own signature to this
 * one, and write the report folder under <dataDir>/reports/<id>/.
 */
export async function processSignature(store: SignatureStore, dataDir: string, id: string, opts: ProcessOptions): Promise<Processed> {
  let record = await store.get(id);
  if (!record) throw new Error(`no signature ${id}`);
  const original = await store.getCase(record.id, 'original');
  if (!original) throw new Error(`signature ${record.id} has no case to work on`);
  const v = validateCase(original);
  if (!v.ok) throw new Error(`the case of ${record.id} is not valid: ${v.issues[0]?.message ?? ''}`);
  const target: Signature = { id: record.id, key: record.key, title: record.title, parts: record.parts, altIds: [...record.altIds, ...record.aliases] };
  let m: MinimizeResult | undefined;
  let minimized: Case | undefined;
  if (opts.minimized || !opts.noMinimize) {
    m = opts.minimized ?? (await minimize(opts.executor, v.value, { ...opts.minimize, signature: target }));
    // An aborted minimization (its coordinator stopping) records nothing: it is taken up again later.
    if (opts.minimize?.signal?.aborted) throw new Error(`minimization of ${record.id} aborted`);
    if (m.reproduced) {
      minimized = m.minimized;
      await store.putCase(record.id, 'minimized', minimized);
      record = await store.setReproduction(record.id, { runs: m.finalRate.runs, reproduced: m.finalRate.reproduced, target: opts.executor.name, case: 'minimized' });
      if (m.minimizedSignature && m.minimizedSignature.id !== record.id) record = await store.alias(m.minimizedSignature.id, record.id);
    } else record = await store.setReproduction(record.id, { runs: m.originalRate.runs, reproduced: 0, target: opts.executor.name, case: 'original' });
  }
  const ck = opts.crossKernel?.length ? await crossKernel(minimized ?? v.value, opts.crossKernel, { signature: target }) : undefined;
  const dir = signatureDir(signaturesRoot(dataDir), record.id);
  const outcome = m?.outcome ?? opts.outcome;
  const observation = observationOf(m?.outcome) ?? (outcome === opts.outcome ? opts.observation : undefined);
  const report = await writeReport(dir, {
    record,
    original: v.value,
    ...(minimized ? { minimized } : {}),
    ...(m ? { minimize: m } : {}),
    ...(outcome ? { outcome } : {}),
    ...(opts.kernelLog ? { kernelLog: opts.kernelLog } : {}),
    ...(observation ? { observation } : {}),
    ...(opts.kernelConfig ? { kernelConfig: opts.kernelConfig } : {}),
    ...(ck ? { crossKernel: ck } : {}),
  });
  return { record, ...(m ? { minimize: m } : {}), ...(ck ? { crossKernel: ck } : {}), report };
}
