/**
 * The signature store: one record per signature, with how often, when and
 * where it was seen, how well it reproduces, its lifecycle status, and the
 * cases that show it (the first one, and the minimized one).
 *
 * The interface is what the farm and the CLI use; there are three
 * implementations: in memory; JSON files under <data>/reports/<id>/ (the
 * CLI, and what the dashboard reads); and Redis mirrored to those files
 * (./redis-store.ts, the farm's). All of them share the record logic below
 * (applyOccurrence, mergeRecords, ...), so they agree on what a record means.
 *
 * Merging: an occurrence is filed under its signature's id, or under the
 * record that already lists that id as an alias, or under a record whose id
 * is among the occurrence's alternative ids (or that lists the occurrence's
 * id among its own): one lock inversion seen from its two sides is one
 * record. `alias(from, into)` merges two records by hand or after
 * minimization (the minimized case shows the bug under a simpler signature).
 *
 * Lifecycle: new -> reported -> fixed (in a kernel) | invalid | suppressed.
 * Open signatures (new, reported) are re-tested on every kernel added to the
 * farm: signaturesToRetest(store, kernel).
 *
 * Layout of the directory store, under <data>/reports/ (signaturesRoot):
 *   <id>/signature.json   the SignatureRecord
 *   <id>/case.json        the first case that showed it (original)
 *   <id>/minimized.json   the minimized case, once there is one
 *   (report.ts writes report.md, report.json, repro.sh, repro.c beside them)
 * An alias has no folder: the record that absorbed it lists it in `aliases`.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Case } from '../../model/index.ts';
import { Mutex, readJson, signatureDir, writeJsonAtomic } from './files.ts';
import { type Signature, type SignatureParts, isSignatureId } from './signature.ts';

export const SIGNATURE_STATUSES = ['new', 'reported', 'fixed', 'invalid', 'suppressed'] as const;
export type SignatureStatus = (typeof SIGNATURE_STATUSES)[number];
/** Statuses of signatures still to be worked on: re-tested on new kernels. */
export const OPEN_STATUSES: ReadonlySet<SignatureStatus> = new Set(['new', 'reported']);

export interface SeenOn {
  count: number;
  first: number;
  last: number;
}

/** How often the finding came back when its case was run again. */
export interface Reproduction {
  runs: number;
  reproduced: number;
  /** reproduced / runs. */
  rate: number;
  target: string;
  /** Which case was run. */
  case: 'original' | 'minimized';
  at: number;
}

/** A re-test on one kernel. */
export interface Retest {
  kernel: string;
  target: string;
  runs: number;
  reproduced: number;
  at: number;
}

export interface SignatureRecord {
  id: string;
  key: string;
  title: string;
  parts: SignatureParts;
  altIds: string[];
  /** Other ids filed under this record. */
  aliases: string[];
  status: SignatureStatus;
  /** status 'fixed': the first kernel without it. */
  fixedIn?: string;
  statusNote?: string;
  statusAt?: number;
  count: number;
  firstSeen: number;
  lastSeen: number;
  targets: Record<string, SeenOn>;
  kernels: Record<string, SeenOn>;
  /** Exact kernel versions (uname -v, Debian package version) where known, by kernel name. */
  kernelVersions: Record<string, string>;
  reproduction?: Reproduction;
  retests: Record<string, Retest>;
  /** Where it was first seen. */
  first: { target: string; campaign?: string; caseId?: string };
}

/** One sighting of a finding. */
export interface Occurrence {
  signature: Signature;
  target: string;
  /** The kernel's name (kernelOfTarget); defaults to the target name. */
  kernel?: string;
  /** The kernel's exact version string, when the target knows it. */
  kernelVersion?: string;
  at?: number;
  campaign?: string;
  caseId?: string;
  /** The case that showed it: kept as case.json when the record is new. */
  theCase?: Case;
}

export interface RecordResult {
  record: SignatureRecord;
  isNew: boolean;
  newTarget: boolean;
  newKernel: boolean;
  /** The occurrence's own id when it was filed under another record (an alias or an alternative title). */
  mergedFrom?: string;
}

export type CaseRole = 'original' | 'minimized';

export interface StatusChange {
  /** 'fixed': the first kernel without the bug. */
  fixedIn?: string;
  note?: string;
  at?: number;
}

export interface SignatureStore {
  /** File one occurrence; creates the record when it is the first. */
  record(o: Occurrence): Promise<RecordResult>;
  /** The record filed under `id` (aliases resolve to the record that absorbed them). */
  get(id: string): Promise<SignatureRecord | undefined>;
  /** Every record, most recently seen first. */
  list(): Promise<SignatureRecord[]>;
  setStatus(id: string, status: SignatureStatus, change?: StatusChange): Promise<SignatureRecord>;
  setReproduction(id: string, r: Omit<Reproduction, 'rate' | 'at'> & { at?: number }): Promise<SignatureRecord>;
  recordRetest(id: string, r: Omit<Retest, 'at'> & { at?: number }): Promise<SignatureRecord>;
  /** Merge the record of `from` into the record of `into` (counts add up; `from` becomes an alias). */
  alias(from: string, into: string): Promise<SignatureRecord>;
  putCase(id: string, role: CaseRole, c: Case): Promise<void>;
  getCase(id: string, role: CaseRole): Promise<Case | undefined>;
}

// ---------------------------------------------------------------- record logic (shared)

function bump(m: Record<string, SeenOn>, k: string, at: number): boolean {
  const x = m[k];
  if (x) {
    x.count++;
    x.first = Math.min(x.first, at);
    x.last = Math.max(x.last, at);
    return false;
  }
  m[k] = { count: 1, first: at, last: at };
  return true;
}

export function newRecord(o: Occurrence, at: number): SignatureRecord {
  const s = o.signature;
  const first: SignatureRecord['first'] = { target: o.target };
  if (o.campaign !== undefined) first.campaign = o.campaign;
  if (o.caseId !== undefined) first.caseId = o.caseId;
  return {
    id: s.id,
    key: s.key,
    title: s.title,
    parts: s.parts,
    altIds: [...s.altIds],
    aliases: [],
    status: 'new',
    count: 0,
    firstSeen: at,
    lastSeen: at,
    targets: {},
    kernels: {},
    kernelVersions: {},
    retests: {},
    first,
  };
}

/** Count one occurrence into a record (mutates it). */
export function applyOccurrence(r: SignatureRecord, o: Occurrence, at: number): { newTarget: boolean; newKernel: boolean } {
  r.count++;
  r.firstSeen = Math.min(r.firstSeen, at);
  r.lastSeen = Math.max(r.lastSeen, at);
  const kernel = o.kernel ?? o.target;
  const newTarget = bump(r.targets, o.target, at);
  const newKernel = bump(r.kernels, kernel, at);
  if (o.kernelVersion) r.kernelVersions[kernel] = o.kernelVersion;
  for (const a of o.signature.altIds) if (a !== r.id && !r.altIds.includes(a)) r.altIds.push(a);
  if (o.signature.id !== r.id && !r.aliases.includes(o.signature.id)) r.aliases.push(o.signature.id);
  return { newTarget, newKernel };
}

function mergeSeen(into: Record<string, SeenOn>, from: Record<string, SeenOn>): void {
  for (const [k, v] of Object.entries(from)) {
    const x = into[k];
    if (!x) into[k] = { ...v };
    else {
      x.count += v.count;
      x.first = Math.min(x.first, v.first);
      x.last = Math.max(x.last, v.last);
    }
  }
}

/** `from` folded into `into` (mutates into): counts add, `from` and its aliases become aliases. */
export function mergeRecords(into: SignatureRecord, from: SignatureRecord): void {
  into.count += from.count;
  into.firstSeen = Math.min(into.firstSeen, from.firstSeen);
  into.lastSeen = Math.max(into.lastSeen, from.lastSeen);
  mergeSeen(into.targets, from.targets);
  mergeSeen(into.kernels, from.kernels);
  into.kernelVersions = { ...from.kernelVersions, ...into.kernelVersions };
  for (const [k, v] of Object.entries(from.retests)) if (!into.retests[k] || into.retests[k]!.at < v.at) into.retests[k] = v;
  if (!into.reproduction && from.reproduction) into.reproduction = from.reproduction;
  for (const a of [from.id, ...from.aliases, ...from.altIds]) if (a !== into.id && !into.aliases.includes(a) && !into.altIds.includes(a)) into.aliases.push(a);
}

/** Does an occurrence with this signature belong to record r? */
export function belongsTo(r: SignatureRecord, s: Signature): boolean {
  return r.id === s.id || r.aliases.includes(s.id) || s.altIds.includes(r.id) || r.altIds.includes(s.id);
}

export function applyStatus(r: SignatureRecord, status: SignatureStatus, change: StatusChange = {}): void {
  if (!SIGNATURE_STATUSES.includes(status)) throw new Error(`unknown status '${status}' (known: ${SIGNATURE_STATUSES.join(', ')})`);
  if (status === 'fixed' && !change.fixedIn) throw new Error("status 'fixed' needs the kernel it is fixed in");
  r.status = status;
  r.statusAt = change.at ?? Date.now();
  if (status === 'fixed') r.fixedIn = change.fixedIn;
  else delete r.fixedIn;
  if (change.note !== undefined) r.statusNote = change.note;
}

/**
 * Base of the stores: the interface on top of four primitives (read, write,
 * remove a record, list ids), serialized by a mutex.
 */
export abstract class RecordStore implements SignatureStore {
  private readonly mu = new Mutex();
  /** Runs a read-modify-write alone: in this process (a mutex); a store shared by processes adds its own lock. */
  protected exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.mu.run(fn);
  }
  protected abstract read(id: string): Promise<SignatureRecord | undefined>;
  protected abstract write(r: SignatureRecord): Promise<void>;
  protected abstract remove(id: string): Promise<void>;
  protected abstract ids(): Promise<string[]>;
  abstract putCase(id: string, role: CaseRole, c: Case): Promise<void>;
  protected abstract readCase(id: string, role: CaseRole): Promise<Case | undefined>;

  private async all(): Promise<SignatureRecord[]> {
    const out: SignatureRecord[] = [];
    for (const id of await this.ids()) {
      const r = await this.read(id);
      if (r) out.push(r);
    }
    return out;
  }

  private async resolve(id: string): Promise<SignatureRecord | undefined> {
    const direct = await this.read(id);
    if (direct) return direct;
    return (await this.all()).find((r) => r.aliases.includes(id));
  }

  private async must(id: string): Promise<SignatureRecord> {
    const r = await this.resolve(id);
    if (!r) throw new Error(`no signature ${id}`);
    return r;
  }

  record(o: Occurrence): Promise<RecordResult> {
    return this.exclusive(async () => {
      const at = o.at ?? Date.now();
      const s = o.signature;
      let r = await this.read(s.id);
      if (!r) r = (await this.all()).find((x) => belongsTo(x, s));
      const isNew = !r;
      if (!r) r = newRecord(o, at);
      const { newTarget, newKernel } = applyOccurrence(r, o, at);
      await this.write(r);
      if (isNew && o.theCase) await this.putCase(r.id, 'original', o.theCase);
      const out: RecordResult = { record: r, isNew, newTarget, newKernel };
      if (r.id !== s.id) out.mergedFrom = s.id;
      return out;
    });
  }

  get(id: string): Promise<SignatureRecord | undefined> {
    return this.resolve(id);
  }

  async list(): Promise<SignatureRecord[]> {
    return (await this.all()).sort((a, b) => b.lastSeen - a.lastSeen || a.id.localeCompare(b.id));
  }

  setStatus(id: string, status: SignatureStatus, change?: StatusChange): Promise<SignatureRecord> {
    return this.exclusive(async () => {
      const r = await this.must(id);
      applyStatus(r, status, change);
      await this.write(r);
      return r;
    });
  }

  setReproduction(id: string, x: Omit<Reproduction, 'rate' | 'at'> & { at?: number }): Promise<SignatureRecord> {
    return this.exclusive(async () => {
      const r = await this.must(id);
      r.reproduction = { ...x, rate: x.runs ? x.reproduced / x.runs : 0, at: x.at ?? Date.now() };
      await this.write(r);
      return r;
    });
  }

  recordRetest(id: string, x: Omit<Retest, 'at'> & { at?: number }): Promise<SignatureRecord> {
    return this.exclusive(async () => {
      const r = await this.must(id);
      r.retests[x.kernel] = { ...x, at: x.at ?? Date.now() };
      await this.write(r);
      return r;
    });
  }

  alias(from: string, into: string): Promise<SignatureRecord> {
    return this.exclusive(async () => {
      const target = await this.must(into);
      const source = await this.resolve(from);
      if (source && source.id === target.id) return target;
      if (source) {
        mergeRecords(target, source);
        await this.write(target);
        // Cases the survivor lacks come over before the absorbed record goes.
        for (const role of ['original', 'minimized'] as const) {
          const c = (await this.readCase(target.id, role)) ? undefined : await this.readCase(source.id, role);
          if (c) await this.putCase(target.id, role, c);
        }
        await this.remove(source.id);
      } else if (!target.aliases.includes(from) && from !== target.id) {
        target.aliases.push(from);
        await this.write(target);
      }
      return target;
    });
  }

  async getCase(id: string, role: CaseRole): Promise<Case | undefined> {
    const r = await this.resolve(id);
    return r ? this.readCase(r.id, role) : undefined;
  }
}

/** In memory: tests, and a farm that keeps no files. */
export class MemorySignatureStore extends RecordStore {
  private readonly records = new Map<string, SignatureRecord>();
  private readonly cases = new Map<string, Case>();

  protected async read(id: string): Promise<SignatureRecord | undefined> {
    const r = this.records.get(id);
    return r ? structuredClone(r) : undefined;
  }
  protected async write(r: SignatureRecord): Promise<void> {
    this.records.set(r.id, structuredClone(r));
  }
  protected async remove(id: string): Promise<void> {
    this.records.delete(id);
    for (const role of ['original', 'minimized'] as const) this.cases.delete(`${id}/${role}`);
  }
  protected async ids(): Promise<string[]> {
    return [...this.records.keys()];
  }
  async putCase(id: string, role: CaseRole, c: Case): Promise<void> {
    this.cases.set(`${id}/${role}`, structuredClone(c));
  }
  protected async readCase(id: string, role: CaseRole): Promise<Case | undefined> {
    const c = this.cases.get(`${id}/${role}`);
    return c ? structuredClone(c) : undefined;
  }
}

const CASE_FILE: Record<CaseRole, string> = { original: 'case.json', minimized: 'minimized.json' };

/** JSON files under <data>/reports/<id>/ (see the file comment). */
export class DirSignatureStore extends RecordStore {
  /** `root` is <data>/reports (signaturesRoot(dataDir)). */
  constructor(readonly root: string) {
    super();
  }

  dir(id: string): string {
    return signatureDir(this.root, id);
  }

  /** The record file of exactly this id (no alias resolution), for stores layered on this one. */
  readRecord(id: string): Promise<SignatureRecord | undefined> {
    return this.read(id);
  }
  writeRecord(r: SignatureRecord): Promise<void> {
    return this.write(r);
  }
  removeRecord(id: string): Promise<void> {
    return this.remove(id);
  }
  /** Ids of the folders that hold a record or may (valid ids under root), sorted. */
  recordIds(): Promise<string[]> {
    return this.ids();
  }
  readCaseFile(id: string, role: CaseRole): Promise<Case | undefined> {
    return this.readCase(id, role);
  }

  protected async read(id: string): Promise<SignatureRecord | undefined> {
    if (!isSignatureId(id)) return undefined;
    return readJson<SignatureRecord>(join(this.dir(id), 'signature.json'));
  }
  protected async write(r: SignatureRecord): Promise<void> {
    await writeJsonAtomic(join(this.dir(r.id), 'signature.json'), r);
  }
  protected async remove(id: string): Promise<void> {
    await fsp.rm(this.dir(id), { recursive: true, force: true });
  }
  protected async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter(isSignatureId).sort();
  }
  async putCase(id: string, role: CaseRole, c: Case): Promise<void> {
    await writeJsonAtomic(join(this.dir(id), CASE_FILE[role]), c);
  }
  protected async readCase(id: string, role: CaseRole): Promise<Case | undefined> {
    return readJson<Case>(join(this.dir(id), CASE_FILE[role]));
  }
}

export interface RetestItem {
  record: SignatureRecord;
  /** The case to run: the minimized one when there is one. */
  theCase: Case;
  role: CaseRole;
}

/**
 * The open signatures to run on a kernel just added to the farm: status new
 * or reported, never seen on that kernel and not re-tested there yet, with a
 * case to run (the minimized one first). Most recently seen first.
 */
export async function signaturesToRetest(store: SignatureStore, kernel: string): Promise<RetestItem[]> {
  const out: RetestItem[] = [];
  for (const r of await store.list()) {
    if (!OPEN_STATUSES.has(r.status)) continue;
    if (r.kernels[kernel] || r.retests[kernel]) continue;
    const min = await store.getCase(r.id, 'minimized');
    const theCase = min ?? (await store.getCase(r.id, 'original'));
    if (!theCase) continue;
    out.push({ record: r, theCase, role: min ? 'minimized' : 'original' });
  }
  return out;
}
