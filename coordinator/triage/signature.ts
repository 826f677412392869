/**
 * Signatures: what triage deduplicates findings by.
 *
 * A signature names a finding independently of the case that found it, of
 * the target and of the run: no offsets, op ids, sizes, device instances,
 * addresses or pids. It has a stable `id` (a readable slug plus a hash of
 * `key`, safe as a file name), a `title` for people, the structured `parts`
 * it is made of, and `altIds`: the ids under which the same bug may also be
 * filed (the other side of a lock inversion), so that stores merge them.
 *
 * Kernel findings (crash, hang, and kernel-log divergences): the report kind
 * and title of the kernel-log parser (worker/kernel-log), whose titles
 * already hold the guilty function with helper frames skipped and numbers,
 * addresses and device instances scrubbed. A lock inversion ("possible
 * deadlock") is keyed by the smallest acquisition site of its cycle (the
 * title's function and, when the log is at hand, the first real frame of
 * every `-> #N` entry of the dependency chain): each side's chain holds the
 * other side's acquisition, so both sides get the same id at once. Other
 * alternative titles (the other lock's site, where a KASAN object was
 * allocated and freed) link signatures through `altIds`, which the stores
 * merge on.
 *
 * Model divergences: class (and data class, and the errno of an unexpected
 * error), op kind (with the fallocate or discard mode), submission path
 * (psync/pvec/io_uring, direct or buffered, nowait; 'mmap' for mapping ops),
 * the kind of layer the op addressed and the filesystem under it.
 *
 * Which divergence of an outcome is its signature (the primary one): a kernel
 * report of a kernel bug (WARNING, BUG, KASAN, lockdep, "not cleared", ...)
 * first; else the first divergence of the model in program order; else an
 * IO/integrity/fs error report; else fsck. The others are listed in reports.
 */
import { createHash } from 'node:crypto';
import { type Case, type DataClass, type Divergence, type DivergenceClass, type Layer, type Op, type RunOutcome, layerModule } from '../../model/index.ts';
import { COMMON_SKIP } from '../../worker/kernel-log/formats.ts';
import { FORMATS, type KernelReport, type ReportKind, isSkipped, parseFrame, parseKernelLog, scrubTitle } from '../../worker/kernel-log/parse.ts';

export type Finding = Extract<RunOutcome, { kind: 'divergence' | 'crash' | 'hang' }>;

export function isFinding(o: RunOutcome): o is Finding {
  return o.kind === 'divergence' || o.kind === 'crash' || o.kind === 'hang';
}

export interface SignatureParts {
  /** 'kernel': a crash, hang or kernel-log report; 'model': a divergence from the model. */
  source: 'kernel' | 'model';
  /** The outcome kind it came from. */
  outcome: Finding['kind'];
  /** Kernel: the report kind (worker/kernel-log REPORT_KINDS), 'hang' or 'unknown' for a title no format makes. */
  reportKind?: ReportKind | 'hang' | 'unknown';
  /** Kernel: the scrubbed title. */
  kernelTitle?: string;
  /** Kernel: the function blamed, when the title names one. */
  guilty?: string;
  class?: DivergenceClass;
  dataClass?: DataClass;
  /** unexpected-error: the errno the kernel answered. */
  errno?: string;
  /** The op kind, with fallocate's or discard's mode: 'read', 'fallocate(punch-hole)'. */
  op?: string;
  /** 'io_uring+direct+nowait', 'psync+buffered', 'mmap', or '-' for ops that submit nothing. */
  path?: string;
  /** Kind of the layer the op (or the check) addressed: 'loop', 'file', 'dm-crypt'... */
  top?: string;
  /** The filesystem type the object lives on or sits over, or '-'. */
  fs?: string;
}

export interface Signature {
  /** `<slug>-<12 hex>`: stable, [a-z0-9-], at most 64 chars; a file name as it is. */
  id: string;
  /** The canonical text the id hashes. */
  key: string;
  title: string;
  parts: SignatureParts;
  /** Ids the same bug may also be filed under (other sides of a race). */
  altIds: string[];
}

const SIG_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** A signature id as given by a user (CLI) or read from a directory name: only what signatureId makes passes. */
export function isSignatureId(s: string): boolean {
  return SIG_ID.test(s) && !s.includes('--') && !s.endsWith('-');
}

function slugify(text: string, max: number): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '');
  return s || 'finding';
}

/** The id of a key: a slug of the title for people, and 12 hex digits of its hash for uniqueness. */
export function signatureId(key: string, title: string): string {
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return `${slugify(title, 50)}-${hash}`;
}

// ---------------------------------------------------------------- kernel titles

interface TitleRule {
  kind: ReportKind;
  re: RegExp;
}

/** Title templates of the parser's formats as regexps: which kind of report a bare title came from. */
const TITLE_RULES: TitleRule[] = FORMATS.flatMap((f) =>
  [f.title, ...(f.alts ?? []).map((a) => a.title)].map((t) => ({ kind: f.kind, re: templateRegExp(t) })),
);

function templateRegExp(template: string): RegExp {
  let out = '';
  let i = 0;
  const esc = (s: string) => s.replace(/[.*+?^$()|\\/]/g, '\\$&');
  const part = (s: string) => s.split(/\{\w+\}/).map(esc).join('.+?');
  while (i < template.length) {
    const open = template.indexOf('[', i);
    if (open < 0) {
      out += part(template.slice(i));
      break;
    }
    const close = template.indexOf(']', open);
    out += part(template.slice(i, open));
    out += `(?:${part(template.slice(open + 1, close))})?`;
    i = close + 1;
  }
  return new RegExp(`^${out}$`);
}

/** The report kind a kernel title comes from, by the parser's title templates. */
export function kindOfTitle(title: string): ReportKind | 'unknown' {
  return TITLE_RULES.find((r) => r.re.test(title))?.kind ?? 'unknown';
}

/** Report kinds that are kernel bugs by themselves (not errors the kernel reports about IO or on-disk data). */
const BUG_KINDS = new Set<string>(['WARNING', 'BUG', 'Oops', 'GPF', 'KASAN', 'UBSAN', 'lockdep', 'hung-task', 'panic', 'not-cleared', 'soft-lockup', 'rcu-stall']);

function guiltyOf(title: string): string | undefined {
  return /\bin ([A-Za-z_][\w.]*)$/.exec(title)?.[1];
}

const DEADLOCK = /^possible deadlock(?: in (\S+))?$/;

/**
 * Where each lock of a lockdep cycle is taken: the first frame that is not
 * lock machinery after every `-> #N (lock):` line of the dependency chain.
 * Both sides of one inversion list the same sites (each side's chain holds
 * the other side's acquisition), so these name the cycle whichever side the
 * kernel caught.
 */
export function lockdepSites(r: Pick<KernelReport, 'lines'>): string[] {
  const sites = new Set<string>();
  let inEntry = false;
  for (const line of r.lines) {
    if (/^-> #\d+ /.test(line)) {
      inEntry = true;
      continue;
    }
    if (!inEntry) continue;
    const f = parseFrame(line);
    if (!f) {
      if (line.trim() !== '') inEntry = false;
      continue;
    }
    if (f.unreliable || isSkipped(f.func, COMMON_SKIP)) continue;
    sites.add(f.func);
    inEntry = false;
  }
  return [...sites];
}

interface KernelFacts {
  kind?: ReportKind;
  alts: string[];
  /** Lockdep: acquisition sites of the cycle's locks. */
  sites: string[];
}

function kernelSignature(outcome: Finding['kind'], title: string, facts: KernelFacts): Signature {
  const t = scrubTitle(title);
  const alt = [...new Set(facts.alts.map(scrubTitle))].filter((a) => a !== t);
  const reportKind = facts.kind ?? (outcome === 'hang' && kindOfTitle(t) === 'unknown' ? 'hang' : kindOfTitle(t));
  // A lock inversion is one bug from either side: key it by the smallest acquisition site of its cycle.
  let keyTitle = t;
  const dl = reportKind === 'lockdep' || reportKind === 'unknown' ? DEADLOCK.exec(t) : null;
  if (dl?.[1]) {
    const sites = [...new Set([dl[1], ...facts.sites])].sort();
    keyTitle = `possible deadlock in ${sites[0]}`;
    for (const s of sites) alt.push(`possible deadlock in ${s}`);
  }
  const key = `kernel|${keyTitle}`;
  const parts: SignatureParts = { source: 'kernel', outcome, reportKind, kernelTitle: t };
  const g = guiltyOf(t);
  if (g) parts.guilty = g;
  const id = signatureId(key, keyTitle);
  const altIds = [...new Set([t, ...alt].map((a) => signatureId(`kernel|${a}`, a)))].filter((x) => x !== id);
  return { id, key, title: t, parts, altIds };
}

/** What the parser says about the report with this title in a log: its kind, alternative titles, lockdep sites. */
function kernelFacts(title: string, log: string | readonly string[] | undefined): KernelFacts {
  if (!log || !log.length) return { alts: [], sites: [] };
  try {
    const r = parseKernelLog(log).find((x) => x.title === title);
    if (r) return { kind: r.kind, alts: r.altTitles, sites: r.kind === 'lockdep' ? lockdepSites(r) : [] };
  } catch {
    // a log the parser cannot read still has its title
  }
  return { alts: [], sites: [] };
}

// ---------------------------------------------------------------- model divergences

function opOf(c: Case | undefined, id: number | undefined): { op: Op; thread: number } | undefined {
  if (!c || id === undefined) return undefined;
  for (const [thread, t] of c.program.threads.entries()) for (const op of t.ops) if (op.id === id) return { op, thread };
  return undefined;
}

/** 'read', 'fallocate(punch-hole)', 'discard(zeroout)'. */
export function opLabel(op: Op): string {
  if (op.kind === 'fallocate' || op.kind === 'discard') return `${op.kind}(${op.mode})`;
  if (op.kind === 'remount' || op.kind === 'msync') return `${op.kind}(${op.mode})`;
  return op.kind;
}

/** How an op reached the kernel: 'io_uring+direct+nowait', 'psync+buffered', 'mmap', or '-'. */
export function submissionPath(op: Op): string {
  if (op.kind === 'read' || op.kind === 'write') return `${op.via}+${op.direct ? 'direct' : 'buffered'}${op.nowait ? '+nowait' : ''}`;
  if (op.kind === 'mmap-read' || op.kind === 'mmap-write' || op.kind === 'msync') return 'mmap';
  return '-';
}

function layerById(c: Case | undefined, id: string | undefined): Layer | undefined {
  return c && id !== undefined ? c.stack.layers.find((l) => l.id === id) : undefined;
}

function lowerIds(l: Layer): string[] {
  return layerModule(l).lower(l).map((r) => r.ref);
}

/** The filesystem the object lives on, or the nearest one below it (a loop over a file on ext4: ext4). */
export function fsUnder(c: Case | undefined, id: string | undefined): string {
  const seen = new Set<string>();
  const queue = id !== undefined ? [id] : [];
  while (queue.length) {
    const cur = queue.shift()!;
    if (seen.has(cur)) continue;
    seen.add(cur);
    const l = layerById(c, cur);
    if (!l) continue;
    if (l.kind === 'fs') return l.type;
    queue.push(...lowerIds(l));
  }
  return '-';
}

const CLASS_WORDS: Record<DivergenceClass, string> = {
  'short-read': 'short read below EOF',
  'wrong-data': 'wrong data',
  'unexpected-error': 'unexpected error',
  'missing-error': 'missing error',
  'wrong-count': 'wrong byte count',
  'unexpected-signal': 'unexpected signal',
  'missing-signal': 'missing SIGBUS',
  'size-mismatch': 'wrong final size',
  'final-content': 'wrong final content',
  geometry: 'wrong geometry',
  'missing-result': 'missing result',
  'kernel-log': 'kernel report',
  fsck: 'fsck found damage',
};

const DATA_WORDS: Record<DataClass, string> = {
  zeroes: 'zeroes',
  stale: 'stale data',
  'other-op': "another op's data",
  shifted: 'shifted data',
  garbage: 'garbage',
  'data-instead-of-error': 'data instead of an error',
};

function modelParts(d: Divergence, c: Case | undefined): SignatureParts {
  const found = opOf(c, d.op);
  const op = found?.op;
  const objectId = d.object ?? (op && 'target' in op ? op.target : undefined);
  const parts: SignatureParts = { source: 'model', outcome: 'divergence', class: d.class };
  if (d.dataClass) parts.dataClass = d.dataClass;
  if (d.class === 'unexpected-error' && /^E[A-Z0-9]+$/.test(d.observed)) parts.errno = d.observed;
  if (d.class === 'unexpected-signal' && /^SIG[A-Z]+$/.test(d.observed)) parts.errno = d.observed;
  parts.op = op ? opLabel(op) : d.opKind ?? '-';
  parts.path = op ? submissionPath(op) : '-';
  if (d.class === 'fsck') {
    // "fsck fs0 found damage": the checker names the filesystem layer.
    const fsId = /^fsck (\S+)/.exec(d.message)?.[1];
    const l = layerById(c, fsId);
    parts.top = l?.kind ?? 'fs';
    parts.fs = l?.kind === 'fs' ? l.type : fsUnder(c, fsId);
    return parts;
  }
  parts.top = layerById(c, objectId)?.kind ?? '-';
  parts.fs = fsUnder(c, objectId);
  return parts;
}

function modelKey(p: SignatureParts): string {
  return ['model', p.class, p.dataClass ?? '-', p.errno ?? '-', p.op ?? '-', p.path ?? '-', p.top ?? '-', p.fs ?? '-'].join('|');
}

function modelTitle(p: SignatureParts): string {
  let what = CLASS_WORDS[p.class!] ?? p.class!;
  if (p.class === 'wrong-data' || p.class === 'final-content') what = `${what} (${p.dataClass ? DATA_WORDS[p.dataClass] : 'unknown'})`;
  if (p.errno) what = `unexpected ${p.errno}`;
  const via = p.path && p.path !== '-' ? ` via ${p.path.replace(/\+/g, ' ').replace('direct', 'O_DIRECT')}` : '';
  const op = p.op && p.op !== '-' ? ` from ${p.op}${via}` : '';
  const on = p.top && p.top !== '-' ? ` on ${p.top}${p.fs && p.fs !== '-' ? ` (${p.fs})` : ''}` : '';
  return `${what}${op}${on}`;
}

function isKernelLog(d: Divergence): boolean {
  return d.class === 'kernel-log';
}

function divergenceSignature(d: Divergence, c: Case | undefined, kernelLog?: string | readonly string[]): Signature {
  if (isKernelLog(d)) return kernelSignature('divergence', d.observed, kernelFacts(d.observed, kernelLog));
  const parts = modelParts(d, c);
  const key = modelKey(parts);
  const title = modelTitle(parts);
  return { id: signatureId(key, title), key, title, parts, altIds: [] };
}

/** The divergence an outcome is filed under (see the file comment for the order). */
export function primaryDivergence(ds: readonly Divergence[]): Divergence | undefined {
  const bug = ds.find((d) => isKernelLog(d) && BUG_KINDS.has(kindOfTitle(scrubTitle(d.observed))));
  if (bug) return bug;
  return ds.find((d) => !isKernelLog(d) && d.class !== 'fsck') ?? ds.find(isKernelLog) ?? ds[0];
}

/**
 * The signature of a finding. `theCase` (the case that ran) gives the op's
 * submission path and the layers; without it those parts are '-'.
 * `kernelLog`, when the caller has it, gives kernel-log divergences their
 * alternative titles (a crash's or hang's own log is used for those).
 */
export function signatureOf(o: Finding, theCase?: Case, kernelLog?: string | readonly string[]): Signature {
  if (o.kind === 'crash' || o.kind === 'hang') return kernelSignature(o.kind, o.title, kernelFacts(o.title, o.log));
  const d = primaryDivergence(o.divergences);
  if (!d) {
    const key = 'model|empty';
    return { id: signatureId(key, 'divergence'), key, title: 'divergence', parts: { source: 'model', outcome: 'divergence' }, altIds: [] };
  }
  return divergenceSignature(d, theCase, kernelLog);
}

/** Every distinct signature an outcome shows (the primary first): for reports and for matching. */
export function allSignatures(o: Finding, theCase?: Case, kernelLog?: string | readonly string[]): Signature[] {
  const first = signatureOf(o, theCase, kernelLog);
  if (o.kind !== 'divergence') return [first];
  const out = [first];
  for (const d of o.divergences) {
    const s = divergenceSignature(d, theCase, kernelLog);
    if (!out.some((x) => x.id === s.id)) out.push(s);
  }
  return out;
}

/**
 * The part of a signature that must stay the same while a case is minimized.
 * 'exact' keeps everything (the submission path and the layers too); 'core'
 * keeps what the bug is (class, data class, errno, op kind; a kernel title),
 * so the minimizer may find that a simpler path or stack shows it as well.
 */
export type MatchMode = 'core' | 'exact';

function coreKey(s: Signature): string {
  const p = s.parts;
  if (p.source === 'kernel') return s.key;
  return ['model', p.class, p.dataClass ?? '-', p.errno ?? '-', p.op ?? '-'].join('|');
}

/** The first signature of a run that stands for the same finding as `target` (see MatchMode), if any. */
export function matchingSignature(o: RunOutcome, theCase: Case | undefined, target: Signature, mode: MatchMode = 'core'): Signature | undefined {
  if (!isFinding(o)) return undefined;
  const want = mode === 'exact' ? target.key : coreKey(target);
  const sigs = allSignatures(o, theCase);
  const linked = sigs.find((s) => s.id === target.id || target.altIds.includes(s.id) || s.altIds.includes(target.id));
  return linked ?? sigs.find((s) => (mode === 'exact' ? s.key : coreKey(s)) === want);
}

/** Whether a run shows the finding `target` stands for (any of its divergences, or its kernel report). */
export function showsSignature(o: RunOutcome, theCase: Case | undefined, target: Signature, mode: MatchMode = 'core'): boolean {
  return matchingSignature(o, theCase, target, mode) !== undefined;
}

/** The kernel a target runs: 'qemu:6.1.0-21-amd64' -> '6.1.0-21-amd64'; host -> the release given; model -> 'model'. */
export function kernelOfTarget(target: string, hostRelease?: string): string {
  if (target.startsWith('qemu:')) return target.slice(5);
  if (target === 'host') return hostRelease ?? 'host';
  if (target.startsWith('ssh:')) return target;
  return target;
}

// ---------------------------------------------------------------- corpus features

/**
 * What the corpus keep policy (corpus/store/policy.ts) splits an outcome
 * class by, besides the signature: the stack shape (layer kinds bottom-up),
 * the op kinds, one or several threads, and the scenarios. Structural, so
 * the same for every target.
 */
export function stackShape(c: Case): string {
  return c.stack.layers.map((l) => l.kind).join('>');
}

function opKinds(c: Case): string {
  const kinds = new Set<string>();
  for (const t of c.program.threads) for (const op of t.ops) kinds.add(op.kind);
  return [...kinds].sort().join(',');
}

export function caseFeatures(c: Case, scenarios: readonly string[] | undefined): string[] {
  return [`stack=${stackShape(c)}`, `ops=${opKinds(c)}`, c.program.threads.length > 1 ? 'threads=many' : 'threads=one', ...(scenarios ?? []).map((s) => `scenario=${s}`)];
}
