/**
 * The farm's wire contract: what the coordinator and the workers exchange
 * through Redis. Everything here is versioned (`v: 1`); a worker refuses a
 * job it cannot read (UnrecoverableError), it never guesses.
 *
 * ## Names
 * BullMQ forbids ':' in queue names and job ids, and target names have one
 * (`qemu:6.1.0-56-amd64`), so a target name is ENCODED by replacing its ':'
 * with '-'. A target name is `KIND[:ID]` where KIND has no '-' (model, host,
 * qemu, ssh, ...), so the first '-' of an encoded name is the ':' and the
 * encoding is reversible (decodeTargetName).
 *
 *   exec queue of target T   `exec-<encoded T>`       exec-model, exec-qemu-6.1.0-56-amd64
 *   triage queue             `triage`
 *   BullMQ prefix            the farm namespace (default `blockfarm`), so
 *                            BullMQ's keys are `<ns>:exec-model:...`
 *
 * Job ids (deterministic, so an enqueue repeated after a coordinator crash is
 * a no-op in BullMQ):
 *   exec     `<campaign>-<encoded T>-<from>-<to>`   cases [from, to) of the
 *            campaign's case stream for T (a split batch gets the halves' ranges)
 *   triage   `<campaign>-<encoded T>-<case id>`
 *
 * ## exec job (queue exec-<T>, job name 'batch')
 * data: ExecJobData
 *   v              1
 *   coordinator    id of the coordinator that produced the job (host-pid-random)
 *   campaign       campaign id (`seed-<N>`)
 *   target         the target name, not encoded; must be the queue's target
 *   from, to       the range of case indexes this batch holds (to - from = cases.length)
 *   caseTimeoutMs  the longest one case may run on this target
 *   cases          CaseEnvelope[]: { id, index, origin, parent?, scenarios?, case }
 *                  parent = the corpus hash (corpus/store caseHash, 64 hex) of the case it mutates
 *                  id = caseId(case): 16 hex of the SHA-256 of the validated case's JSON
 *                  case = the case JSON, validated by the worker (model/validateCase);
 *                  an invalid case makes the worker refuse the whole job
 *                  (UnrecoverableError "case #i (id) is not valid: path: message; ...")
 * returnvalue: BatchResult
 *   v, worker (worker id), target, campaign, from, to
 *   startedAt      ms since the epoch
 *   wallMs         the batch's wall time in the worker, queue excluded
 *   targetMs       time spent in runCase (the target and the oracle)
 *   results        CaseResult[] in case order: { id, index, ms, outcome: RunOutcome }
 *                  (pass outcomes carry at most 3 notes; crash/hang logs at most 256 KiB)
 * failedReason: one line. Refusals start with "refused:" and are never retried
 * (UnrecoverableError); anything else is an infrastructure failure that BullMQ
 * retries (attempts, then the coordinator splits the batch to isolate the case).
 *
 * ## triage job (queue triage, job name 'divergence' | 'crash' | 'hang')
 * data: TriageJobData
 *   v, coordinator, campaign, target, worker, execJob (the exec job id)
 *   caseId, signature (coordinator/triage/signature.ts: signatureOf(outcome, case).id), scenarios
 *   outcome        the RunOutcome (divergence, crash or hang)
 *   case           the case JSON
 *
 * ## Worker registry (heartbeats)
 *   <ns>:worker:<worker id>   hash, expires WORKER_TTL_MS after the last beat:
 *                             id, host, pid, targets (JSON array), concurrency,
 *                             startedAt, beatAt (ms), version
 *   <ns>:workers              sorted set: worker id -> last beat (ms); entries whose
 *                             hash expired are dead (and pruned by readers)
 * Worker ids and coordinator ids are `<host>-<pid>-<6 hex>` (no ':').
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { RunOutcome } from '../../model/index.ts';

export const PROTOCOL_VERSION = 1 as const;
export const DEFAULT_NAMESPACE = 'blockfarm';
export const TRIAGE_QUEUE = 'triage';
export const EXEC_JOB_NAME = 'batch';
/** A failedReason starting with this is a refusal (never retried). */
export const REFUSED_PREFIX = 'refused:';

/** KIND[:ID]: KIND lower-case letters, digits and '_' (no '-': see the encoding); ID letters, digits, . _ + - */
const TARGET_NAME = /^[a-z][a-z0-9_]*(?::[A-Za-z0-9][A-Za-z0-9._+-]{0,99})?$/;
const NAMESPACE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Why a target name cannot name a queue, or undefined. */
export function targetNameSyntaxProblem(name: string): string | undefined {
  if (TARGET_NAME.test(name)) return undefined;
  return `'${name}' is not a target name (KIND or KIND:ID, e.g. model, host, qemu:6.1.0-56-amd64; KIND has no '-')`;
}

export function encodeTargetName(name: string): string {
  const problem = targetNameSyntaxProblem(name);
  if (problem) throw new Error(problem);
  return name.replace(':', '-');
}

export function decodeTargetName(encoded: string): string {
  const i = encoded.indexOf('-');
  return i < 0 ? encoded : `${encoded.slice(0, i)}:${encoded.slice(i + 1)}`;
}

export function execQueueName(target: string): string {
  return `exec-${encodeTargetName(target)}`;
}

export function namespaceProblem(ns: string): string | undefined {
  return NAMESPACE.test(ns) ? undefined : `'${ns}' is not a namespace (1-64 of A-Z a-z 0-9 _ . -)`;
}

export function execJobId(campaign: string, target: string, from: number, to: number): string {
  return `${campaign}-${encodeTargetName(target)}-${from}-${to}`;
}

export function triageJobId(campaign: string, target: string, caseId: string): string {
  return `${campaign}-${encodeTargetName(target)}-${caseId}`;
}

/** `<host>-<pid>-<6 hex>`, safe in job data and key names. */
export function processId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * The content address of a case: 16 hex digits of the SHA-256 of the JSON of
 * the VALIDATED case (validateCase's output: keys in schema order, defaults
 * filled in), so the same case has the same id whoever wrote it and however
 * its keys were ordered.
 */
export function caseId(validated: unknown): string {
  return createHash('sha256').update(JSON.stringify(validated)).digest('hex').slice(0, 16);
}

export const CaseOrigin = z.enum(['seed', 'generated', 'mutated', 'split', 'manual']);
export type CaseOrigin = z.infer<typeof CaseOrigin>;

const Id = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'an id of letters, digits, _ . - (no ":")');

export const CaseEnvelope = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{16}$/, '16 hex digits'),
  index: z.number().int().nonnegative(),
  origin: CaseOrigin,
  /** The corpus case it was mutated from: its corpus hash (corpus/store caseHash, 64 hex). */
  parent: z.string().regex(/^[0-9a-f]{64}$/, '64 hex digits (a corpus hash)').optional(),
  scenarios: z.array(z.string().max(8)).max(8).optional(),
  /** Validated by the worker with validateCase, not here. */
  case: z.unknown(),
});
export type CaseEnvelope = z.infer<typeof CaseEnvelope>;

export const ExecJobData = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  coordinator: Id,
  campaign: Id,
  target: z.string().refine((s) => targetNameSyntaxProblem(s) === undefined, 'a target name'),
  from: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
  caseTimeoutMs: z.number().int().positive().max(24 * 3600_000),
  cases: z.array(CaseEnvelope).min(1).max(10_000),
});
export type ExecJobData = z.infer<typeof ExecJobData>;

export interface CaseResult {
  id: string;
  index: number;
  /** Wall time of this case in the runner. */
  ms: number;
  outcome: RunOutcome;
  /** The program ran on the previous case's stack (the target kept it: model/stack-reuse.ts). */
  stackReused?: true;
}

export interface BatchResult {
  v: typeof PROTOCOL_VERSION;
  worker: string;
  target: string;
  campaign: string;
  from: number;
  to: number;
  startedAt: number;
  wallMs: number;
  targetMs: number;
  results: CaseResult[];
}

export interface TriageJobData {
  v: typeof PROTOCOL_VERSION;
  coordinator: string;
  campaign: string;
  target: string;
  worker: string;
  execJob: string;
  caseId: string;
  signature: string;
  scenarios: string[];
  outcome: Extract<RunOutcome, { kind: 'divergence' | 'crash' | 'hang' }>;
  case: unknown;
}

/** Why job data is not an exec job for `target`, in one line, or the parsed data. */
export function parseExecJobData(data: unknown, target: string): { ok: true; value: ExecJobData } | { ok: false; reason: string } {
  const r = ExecJobData.safeParse(data);
  if (!r.success) {
    const first = r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(job data)'}: ${i.message}`);
    return { ok: false, reason: `malformed exec job (protocol v${PROTOCOL_VERSION}): ${first.join('; ')}` };
  }
  const d = r.data;
  if (d.target !== target) return { ok: false, reason: `job for target '${d.target}' on the queue of '${target}'` };
  if (d.to - d.from !== d.cases.length) return { ok: false, reason: `range [${d.from}, ${d.to}) does not match its ${d.cases.length} cases` };
  return { ok: true, value: d };
}

export const WORKER_TTL_MS = 15_000;
export const HEARTBEAT_MS = 5_000;

export const keys = {
  worker: (ns: string, id: string) => `${ns}:worker:${id}`,
  workers: (ns: string) => `${ns}:workers`,
};

/** Bounded text for logs carried in results. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}\n[... ${text.length - max} more characters cut]`;
}

/** A RunOutcome made small enough to travel: few notes on passes, bounded logs. */
export function compactOutcome(o: RunOutcome): RunOutcome {
  switch (o.kind) {
    case 'pass': return o.notes.length > 3 ? { ...o, notes: o.notes.slice(0, 3) } : o;
    case 'divergence': return { ...o, divergences: o.divergences.slice(0, 50), notes: o.notes.slice(0, 20) };
    case 'crash':
    case 'hang': return { ...o, log: clip(o.log, 256 * 1024) };
    default: return o;
  }
}
