/**
 * The durable corpus: content-addressed case files under a data directory.
 *
 *   <dir>/cases/<h0h1>/<hash>.json   one case, as validated (pretty JSON)
 *   <dir>/index.jsonl                one CorpusEntry per line, in the order kept
 *
 * <hash> is caseHash (sha256 of the canonical JSON of format, seed, stack and
 * program), so the same test is stored once whatever it is named. A case
 * file is written to a temporary name and renamed; the index line is
 * appended after it, and that append is the commit: a case file without an
 * index line (a crash in between) is written again by the next add, and a
 * torn last index line is ignored on open.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type Case, validateCase } from '../../model/index.ts';
import { caseHash } from './hash.ts';
import type { KeepReason, OutcomeClass } from './policy.ts';

export { canonicalJson, caseEssence, caseHash } from './hash.ts';
export * from './policy.ts';

export interface CorpusEntry {
  hash: string;
  /** ISO time the case was kept. */
  addedAt: string;
  origin: Case['meta']['origin'];
  /** Hash of the case it was derived from (mutation, minimization). */
  parent?: string;
  reason: KeepReason | 'seed' | 'manual';
  target?: string;
  outcome?: OutcomeClass;
  signature?: string;
  /** Scenario tags from the classifier, for statistics. */
  scenarios?: string[];
}

export class CorpusStore {
  private readonly index = new Map<string, CorpusEntry>();

  private constructor(readonly dir: string) {}

  /** Open (creating) the corpus under `dir` and read its index. */
  static async open(dir: string): Promise<CorpusStore> {
    const store = new CorpusStore(dir);
    await fsp.mkdir(join(dir, 'cases'), { recursive: true });
    let text = '';
    try {
      text = await fsp.readFile(store.indexPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const e = JSON.parse(line) as CorpusEntry;
        if (typeof e.hash === 'string' && /^[0-9a-f]{64}$/.test(e.hash)) store.index.set(e.hash, e);
      } catch {
        // A torn line from a crash mid-append: the case will be kept again if it is still interesting.
      }
    }
    return store;
  }

  private get indexPath(): string {
    return join(this.dir, 'index.jsonl');
  }

  /** Where a case with this hash lives. */
  pathOf(hash: string): string {
    return join(this.dir, 'cases', hash.slice(0, 2), `${hash}.json`);
  }

  get size(): number {
    return this.index.size;
  }

  has(hash: string): boolean {
    return this.index.has(hash);
  }

  entry(hash: string): CorpusEntry | undefined {
    return this.index.get(hash);
  }

  entries(): IterableIterator<CorpusEntry> {
    return this.index.values();
  }

  /** Keep a case; a case already kept (same hash) is left as it is. */
  async add(c: Case, info: Omit<CorpusEntry, 'hash' | 'addedAt' | 'origin' | 'parent'> & { addedAt?: string }): Promise<{ hash: string; added: boolean }> {
    const hash = caseHash(c);
    if (this.index.has(hash)) return { hash, added: false };
    const file = this.pathOf(hash);
    await fsp.mkdir(join(this.dir, 'cases', hash.slice(0, 2)), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    await fsp.writeFile(tmp, `${JSON.stringify(c, null, 2)}\n`);
    await fsp.rename(tmp, file);
    const entry: CorpusEntry = {
      hash,
      addedAt: info.addedAt ?? new Date().toISOString(),
      origin: c.meta.origin,
      ...(c.meta.parent ? { parent: c.meta.parent } : {}),
      reason: info.reason,
      ...(info.target ? { target: info.target } : {}),
      ...(info.outcome ? { outcome: info.outcome } : {}),
      ...(info.signature ? { signature: info.signature } : {}),
      ...(info.scenarios ? { scenarios: info.scenarios } : {}),
    };
    await fsp.appendFile(this.indexPath, `${JSON.stringify(entry)}\n`);
    this.index.set(hash, entry);
    return { hash, added: true };
  }

  /** A kept case, validated again (a file edited by hand or damaged on disk fails here, with the reasons). */
  async load(hash: string): Promise<Case> {
    const text = await fsp.readFile(this.pathOf(hash), 'utf8');
    const v = validateCase(JSON.parse(text));
    if (!v.ok) throw new Error(`corpus case ${hash}: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    if (caseHash(v.value) !== hash) throw new Error(`corpus case ${hash}: its content does not match its name`);
    return v.value;
  }

  /** Every kept case, in the order kept. */
  async *cases(): AsyncGenerator<Case> {
    for (const hash of [...this.index.keys()]) yield await this.load(hash);
  }
}
