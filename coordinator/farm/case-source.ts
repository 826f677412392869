/**
 * Where a campaign's cases come from, per target. Case i of a campaign's
 * stream for a target is a pure function of (campaign seed, i, what the
 * target can build) when it is generated (coordinator/generate:
 * generateCase), so a campaign is reproducible from its seed and resumes at
 * any index; targets of one kind see the same cases at the same indexes. A
 * share of the indexes (the mutation rate, also decided by (seed, i)) mutates
 * a corpus entry instead (mutateCase), which depends on the corpus at that
 * moment. Every case is classified (coordinator/classify: S1..S5) for the
 * campaign statistics.
 *
 * Shared-stack groups: indexes form aligned groups of `groupSize` (4, a QEMU
 * batch); a group is a shared-stack group with probability `rate`, decided
 * by (seed, group). There the first index is made as anywhere else, and the
 * others are followers: the same stack and data seed with a new program of
 * data ops only (coordinator/generate: programForStack), so a target that
 * keeps a stack set up between cases (model/stack-reuse.ts) builds it once
 * for the group. The stack is the one of case `first` as generated, when
 * every layer of it resets with its disks, else one drawn for the group
 * (stackLeaderCase, never run itself). Either way a follower is a pure
 * function of (seed, index, supports): the generated first case is used even
 * when the mutation draw replaced it in the stream, and followers never
 * mutate (the group would lose its stack; the mutation share of the stream
 * drops by about rate * (groupSize - 1) / groupSize of itself). Followers are
 * origin 'generated', their meta.parent the hash of the case whose stack they
 * share. The host target builds every stack anew, so it gets no groups
 * unless asked.
 *
 * The built-in stand-in generator (write/read/flush programs on a bare disk)
 * is for tests and benchmarks of the farm itself: fast, small and exactly
 * predictable.
 */
import { type Case, type CaseInput, analyzeStack, validateCase } from '../../model/index.ts';
import { loadSeedCases } from '../../corpus/seeds.ts';
import { type CaseEnvelope, type CaseOrigin, caseId } from '../../worker/farm/protocol.ts';
import { type ScenarioTag, classifyCase } from '../classify/scenarios.ts';
import { type GenerateOptions, type Supports, followerFirstOpId, generateCase, mutateCase, programForStack, stackLeaderCase, stackResetsWithDisks } from '../generate/index.ts';
import { kindSupports } from './buildable.ts';
import { mulberry32 as rng } from '../../infra/random.ts';
import { targetKind } from '../../worker/farm/target-defaults.ts';

/** A 31-bit seed for index i of campaign seed s (splitmix-style mixing). */
export function indexSeed(seed: number, i: number, salt = 0): number {
  let x = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca77) ^ Math.imul(salt + 1, 0xc2b2ae3d)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) & 0x7fffffff;
}

/** How cases are made: the campaign generator, or the built-in stand-in. */
export interface GeneratorApi {
  /** 'generator' or 'builtin'. */
  name: string;
  /**
   * Case `index` of campaign `seed`, valid, for a target like `target`, using
   * only what `supports` allows (default: the target kind's).
   */
  generate(seed: number, index: number, target: string, supports?: Supports): Case;
  mutate(c: Case, seed: number, target: string, supports?: Supports): Case;
  classify(c: Case): ScenarioTag[];
  /** Cases that share one stack; a generator without this makes none. */
  sharedStack?: SharedStackApi;
}

export interface SharedStackApi {
  /** Every layer of the case's stack resets when its disks are zeroed, so followers may share it. */
  shares(c: Case): boolean;
  /** A case named `name` on a stack drawn for sharing. */
  leader(seed: number, name: string, target: string, supports?: Supports): Case;
  /** Follower `position` (1, 2, ...) of a group: the leader's stack and data seed, a new data-only program. */
  follow(leader: Case, seed: number, position: number, target: string, supports?: Supports): Case;
}

/**
 * What the generator may use for a target: the kind's supports
 * (./buildable.ts kindSupports), or narrower ones the coordinator worked out
 * for the target's kernel (./buildable.ts buildableFor).
 */
export function generateOptionsFor(target: string, supports?: Supports): GenerateOptions {
  return { supports: supports ?? kindSupports(target) };
}

export const CAMPAIGN_GENERATOR: GeneratorApi = {
  name: 'generator',
  generate: (seed, index, target, supports) => generateCase(seed, index, generateOptionsFor(target, supports)),
  mutate: (c, seed, target, supports) => mutateCase(c, seed, generateOptionsFor(target, supports)),
  classify: (c) => classifyCase(c),
  sharedStack: {
    shares: (c) => stackResetsWithDisks(analyzeStack(c.stack).info),
    leader: (seed, name, target, supports) => stackLeaderCase(seed, { ...generateOptionsFor(target, supports), name }),
    follow: (leader, seed, position, target, supports) => {
      const opts = generateOptionsFor(target, supports);
      return programForStack(leader, seed, { ...opts, position, firstOpId: followerFirstOpId(leader, position, opts) });
    },
  },
};

// ---- the built-in stand-in ----

const KiB = 1024;
const MiB = 1024 * KiB;

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** A small valid case: a disk, one or two threads of aligned writes, reads and flushes. */
export function builtinCase(seed: number): Case {
  const r = rng(seed);
  const lbs = pick(r, [512, 4096] as const);
  const size = pick(r, [1, 4, 16] as const) * MiB;
  const threads = r() < 0.3 ? 2 : 1;
  let id = 1;
  const half = size / threads;
  const programThreads = [];
  for (let t = 0; t < threads; t++) {
    const ops: Array<Record<string, unknown>> = [];
    const n = 2 + Math.floor(r() * 6);
    for (let k = 0; k < n; k++) {
      const blocks = 1 + Math.floor(r() * 8);
      const length = blocks * lbs;
      const slots = Math.max(1, Math.floor((half - length) / lbs));
      // Threads write disjoint halves: no races, so the model's answer is exact.
      const offset = t * half + Math.floor(r() * slots) * lbs;
      const roll = r();
      if (roll < 0.5) ops.push({ kind: 'write', id: id++, target: 'd0', offset, length });
      else if (roll < 0.9) ops.push({ kind: 'read', id: id++, target: 'd0', offset, length });
      else ops.push({ kind: 'flush', id: id++, target: 'd0' });
    }
    // Always end with a read, so every case has data to judge.
    ops.push({ kind: 'read', id: id++, target: 'd0', offset: t * half, length: 4 * lbs });
    programThreads.push({ ops });
  }
  const input: CaseInput = {
    format: 'blockfarm-case/1',
    name: `builtin-${seed.toString(16)}`,
    seed,
    stack: { layers: [{ id: 'd0', kind: 'disk', size, logicalBlockSize: lbs, physicalBlockSize: Math.max(lbs, 4096) } as never] },
    program: { threads: programThreads as never },
    meta: { origin: 'generated' },
  };
  const v = validateCase(input);
  if (!v.ok) throw new Error(`builtin generator made an invalid case: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return v.value;
}

export const BUILTIN_GENERATOR: GeneratorApi = {
  name: 'builtin',
  generate: (seed, index) => builtinCase(indexSeed(seed, index)),
  // Mutation stand-in: the same program with another data seed and name.
  mutate: (c, seed) => ({ ...c, seed, name: `${c.name.slice(0, 100)}-m${seed.toString(16)}`, meta: { ...c.meta, origin: 'mutated' } }),
  classify: () => [],
};

export function generatorNamed(which: 'auto' | 'builtin'): GeneratorApi {
  return which === 'builtin' ? BUILTIN_GENERATOR : CAMPAIGN_GENERATOR;
}

/** Corpus entries to mutate: a count and a lookup by position (the coordinator's corpus index). */
export interface CorpusView {
  size(): Promise<number>;
  /** The case at position k (0 <= k < size), or undefined if it vanished (retention). */
  at(k: number): Promise<{ id: string; case: Case } | undefined>;
}

export interface CaseSourceOptions {
  seed: number;
  /** The target the cases are for (what it can build). */
  target: string;
  generator: GeneratorApi;
  /**
   * Share of indexes that mutate a corpus entry (when the corpus has any).
   * @defaultValue 0.25
   */
  mutationRate?: number;
  corpus?: CorpusView;
  /** What the target can build. @defaultValue the target kind's (./buildable.ts) */
  supports?: Supports;
  /**
   * Seed cases run first (indexes 0..k-1), e.g. corpus/seeds.
   * @defaultValue none
   */
  seeds?: Case[];
  /** Groups of cases that share one stack (see the top of this file). */
  sharedStack?: SharedStackOptions;
}

export interface SharedStackOptions {
  /** Cases per group; groups start at multiples of it. @defaultValue 4 (a QEMU batch) */
  groupSize?: number;
  /** Chance that a group shares one stack. @defaultValue 0.3, and 0 for the host target */
  rate?: number;
}

/** Salts of indexSeed for the shared-stack draws (apart from 7, 13 and 1..3, 99 used below). */
const SALT_GROUP = 21;
const SALT_STACK = 22;
const SALT_FOLLOWER = 23;

/** Whether group `group` of campaign `seed` is a shared-stack group. */
export function isSharedStackGroup(seed: number, group: number, rate: number): boolean {
  return rate > 0 && rng(indexSeed(seed, group, SALT_GROUP))() < rate;
}

export class CaseSource {
  private readonly mutationRate: number;
  private readonly groupSize: number;
  private readonly sharedRate: number;
  /** The last group's leader: its followers usually come in one batch. */
  private lastLeader?: { group: number; leader: Case };
  private lastGenerated?: { index: number; envelope: CaseEnvelope };
  /** Cases the generator got wrong (invalid), replaced by a retry; for the statistics. */
  invalidGenerated = 0;

  constructor(private readonly opts: CaseSourceOptions) {
    this.mutationRate = opts.mutationRate ?? 0.25;
    if (!(this.mutationRate >= 0 && this.mutationRate <= 1)) throw new Error(`mutationRate must be in [0, 1], not ${this.mutationRate}`);
    this.groupSize = opts.sharedStack?.groupSize ?? 4;
    if (!(Number.isInteger(this.groupSize) && this.groupSize >= 2)) throw new Error(`sharedStack.groupSize must be a whole number >= 2, not ${this.groupSize}`);
    this.sharedRate = opts.sharedStack?.rate ?? (targetKind(opts.target) === 'host' ? 0 : 0.3);
    if (!(this.sharedRate >= 0 && this.sharedRate <= 1)) throw new Error(`sharedStack.rate must be in [0, 1], not ${this.sharedRate}`);
  }

  get generatorName(): string {
    return this.opts.generator.name;
  }

  private envelope(c: Case, index: number, origin: CaseOrigin, parent?: string): CaseEnvelope {
    const scenarios = this.opts.generator.classify(c);
    return { id: caseId(c), index, origin, ...(parent ? { parent } : {}), ...(scenarios.length ? { scenarios } : {}), case: c };
  }

  private generated(index: number): CaseEnvelope {
    // A shared-stack group's followers ask again for the case their batch just made at the group's first index.
    if (this.lastGenerated?.index === index) return this.lastGenerated.envelope;
    const envelope = this.generateAt(index);
    this.lastGenerated = { index, envelope };
    return envelope;
  }

  private generateAt(index: number): CaseEnvelope {
    for (let attempt = 0; attempt < 4; attempt++) {
      // Attempt 0 is case `index` of the campaign; a retry (the generator failed) draws from another seed.
      const seed = attempt === 0 ? this.opts.seed : indexSeed(this.opts.seed, index, attempt);
      let c: Case | undefined;
      try {
        c = this.opts.generator.generate(seed, index, this.opts.target, this.opts.supports);
      } catch {
        c = undefined;
      }
      if (c) {
        // The stand-in validates what it makes; anything else is checked here, so no invalid case reaches a queue.
        if (this.opts.generator === BUILTIN_GENERATOR) return this.envelope(c, index, 'generated');
        const v = validateCase(c);
        if (v.ok) return this.envelope(v.value, index, 'generated');
      }
      this.invalidGenerated++;
    }
    return this.envelope(builtinCase(indexSeed(this.opts.seed, index, 99)), index, 'generated');
  }

  /** Where index i sits in a shared-stack group (1..groupSize-1), or undefined when it is no follower. */
  followerPosition(i: number): number | undefined {
    if (!this.opts.generator.sharedStack || this.sharedRate === 0) return undefined;
    const position = i % this.groupSize;
    const first = i - position;
    if (position === 0 || first < (this.opts.seeds?.length ?? 0)) return undefined;
    return isSharedStackGroup(this.opts.seed, first / this.groupSize, this.sharedRate) ? position : undefined;
  }

  /** The case whose stack group `group`'s followers share. */
  private groupLeader(api: SharedStackApi, group: number): Case {
    if (this.lastLeader?.group === group) return this.lastLeader.leader;
    const first = group * this.groupSize;
    const generated = this.generated(first).case as Case;
    const leader = api.shares(generated)
      ? generated
      : api.leader(indexSeed(this.opts.seed, group, SALT_STACK), `gen-${(this.opts.seed >>> 0).toString(16)}-g${group}`, this.opts.target, this.opts.supports);
    this.lastLeader = { group, leader };
    return leader;
  }

  private follower(i: number, position: number): CaseEnvelope {
    const api = this.opts.generator.sharedStack!;
    try {
      const leader = this.groupLeader(api, Math.floor(i / this.groupSize));
      const v = validateCase(api.follow(leader, indexSeed(this.opts.seed, i, SALT_FOLLOWER), position, this.opts.target, this.opts.supports));
      if (v.ok) return this.envelope(v.value, i, 'generated');
    } catch {
      // Counted below; the index gets a generated case instead.
    }
    this.invalidGenerated++;
    return this.generated(i);
  }

  /** Cases [from, to) of the stream. */
  async batch(from: number, to: number): Promise<CaseEnvelope[]> {
    const out: CaseEnvelope[] = [];
    const seeds = this.opts.seeds ?? [];
    const corpusSize = this.opts.corpus && this.mutationRate > 0 ? await this.opts.corpus.size() : 0;
    for (let i = from; i < to; i++) {
      if (i < seeds.length) {
        out.push(this.envelope(seeds[i]!, i, 'seed'));
        continue;
      }
      const position = this.followerPosition(i);
      if (position !== undefined) {
        out.push(this.follower(i, position));
        continue;
      }
      const r = rng(indexSeed(this.opts.seed, i, 7));
      if (corpusSize > 0 && r() < this.mutationRate) {
        const parent = await this.opts.corpus!.at(Math.floor(r() * corpusSize));
        if (parent) {
          try {
            const m = this.opts.generator.mutate(parent.case, indexSeed(this.opts.seed, i, 13), this.opts.target, this.opts.supports);
            const v = validateCase(m);
            if (v.ok) {
              out.push(this.envelope(v.value, i, 'mutated', parent.id));
              continue;
            }
            this.invalidGenerated++;
          } catch {
            this.invalidGenerated++;
          }
        }
      }
      out.push(this.generated(i));
    }
    return out;
  }
}

/** The valid seed cases of corpus/seeds (invalid ones are skipped: the seed tests catch them). */
export function seedCases(): Case[] {
  const out: Case[] = [];
  for (const s of loadSeedCases()) {
    const v = validateCase(s.caseJson);
    if (v.ok) out.push(v.value);
  }
  return out;
}
