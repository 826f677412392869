/**
 * Malformed cases: take the valid cases of test/helpers/valid-cases.ts and
 * break them (delete a required field, change a value's type, an unknown
 * kind or field, a broken reference, a number out of range, deep nesting),
 * or throw arbitrary JSON at the validator. validateCase must never throw;
 * for a broken case it answers ok:false with issues that each have a
 * non-empty path and a one-line message, and never an internal error.
 *
 * Every generator here breaks the case by construction (the field is
 * required, the type is one no field of the schema has there, the id is not
 * in the stack, ...), so `ok: false` is asserted, not assumed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ValidationResult, validateCase } from '../../model/index.ts';
import { VALID_CASES } from '../helpers/valid-cases.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = Array<string | number>;

const BASES = Object.values(VALID_CASES).map((c) => JSON.parse(JSON.stringify(c)) as Json);
const RUNS = { numRuns: Number(process.env.MALFORMED_RUNS ?? 400) };

// ---- what the schema requires, by kind (a field left out here is optional or defaulted) --------

const REQUIRED_LAYER: Record<string, string[]> = {
  disk: ['size'],
  'scsi-debug': ['size'],
  fs: ['on', 'type'],
  file: ['on', 'name'],
  loop: ['on'],
  md: ['level', 'members'],
  'dm-linear': ['on'],
  'dm-stripe': ['members'],
  'dm-crypt': ['on'],
  'dm-integrity': ['on'],
  'dm-flakey': ['on', 'upSeconds', 'downSeconds'],
  'dm-dust': ['on'],
  'dm-snapshot-origin': ['on'],
  'dm-snapshot': ['origin', 'cow'],
};
const RANGE = ['target', 'offset', 'length'];
const REQUIRED_OP: Record<string, string[]> = {
  write: RANGE,
  read: RANGE,
  'mmap-write': RANGE,
  'mmap-read': RANGE,
  msync: ['target'],
  fallocate: [...RANGE, 'mode'],
  truncate: ['target', 'size'],
  fsync: ['target'],
  'sync-file-range': RANGE,
  flush: ['target'],
  'drop-caches': [],
  discard: RANGE,
  remount: ['target'],
  barrier: ['name'],
  sleep: ['ms'],
  'loop-set-direct-io': ['target', 'on'],
  'loop-set-block-size': ['target', 'size'],
  'dm-suspend': ['target'],
  'dm-resume': ['target'],
  'dm-reload': ['target'],
  'snapshot-create': ['target'],
  'snapshot-remove': ['target'],
  'snapshot-merge': ['target'],
  'md-fail': ['target', 'member'],
  corrupt: RANGE,
};
const REQUIRED_BUFFER: Record<string, string[]> = { heap: [], anon: ['touchedPages'], mmap: ['file', 'offset'] };

// ---- walking a case ------------------------------------------------------------------------

function isObj(v: Json | undefined): v is { [k: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function at(root: Json, path: Path): Json | undefined {
  let v: Json | undefined = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, Json>)[p];
  }
  return v;
}

/** A copy of root with the value at path replaced (undefined: deleted); only the nodes on the path are copied. */
function set(root: Json, path: Path, value: Json | undefined): Json {
  if (path.length === 0) return value ?? null;
  if (root === null || typeof root !== 'object') return root;
  const [key, ...rest] = path as [string | number, ...Path];
  const copy = (Array.isArray(root) ? [...root] : { ...root }) as Record<string | number, Json>;
  const next = rest.length ? set(copy[key] ?? null, rest, value) : value;
  if (next === undefined) {
    if (Array.isArray(copy)) copy.splice(key as number, 1);
    else delete copy[key];
  } else Object.defineProperty(copy, key, { value: next, enumerable: true, configurable: true, writable: true }); // also for '__proto__'
  return copy as Json;
}

/** Every node down to depth 32 (below that only deep-nesting mutants go): its path and value. */
function nodes(root: Json): Array<{ path: Path; value: Json }> {
  const out: Array<{ path: Path; value: Json }> = [];
  const todo: Array<{ path: Path; value: Json }> = [{ path: [], value: root }];
  while (todo.length) {
    const n = todo.shift()!;
    out.push(n);
    if (n.path.length >= 32) continue;
    if (Array.isArray(n.value)) n.value.forEach((x, i) => todo.push({ path: [...n.path, i], value: x }));
    else if (isObj(n.value)) for (const [k, x] of Object.entries(n.value)) todo.push({ path: [...n.path, k], value: x });
  }
  return out;
}

function layerPaths(c: Json): Path[] {
  const ls = at(c, ['stack', 'layers']);
  return Array.isArray(ls) ? ls.map((_, i) => ['stack', 'layers', i]) : [];
}

function opPaths(c: Json): Path[] {
  const ts = at(c, ['program', 'threads']);
  if (!Array.isArray(ts)) return [];
  return ts.flatMap((t, ti) => {
    const ops = isObj(t) ? t.ops : undefined;
    return Array.isArray(ops) ? ops.map((_, oi) => ['program', 'threads', ti, 'ops', oi] as Path) : [];
  });
}

/** A kind or placement, if it is a string (a mutated case may hold anything there). */
const str = (v: Json | undefined): string => (typeof v === 'string' ? v : '');

/** The required fields listed for a kind; own keys only (a mutated kind may be 'constructor' or '__proto__'). */
const requiredOf = (table: Record<string, string[]>, kind: string): string[] => (Object.hasOwn(table, kind) ? table[kind]! : []);

/** [object path, key] pairs whose deletion must make the case invalid. */
function requiredFields(c: Json): Array<[Path, string]> {
  const out: Array<[Path, string]> = [];
  for (const k of ['format', 'name', 'seed', 'stack', 'program']) out.push([[], k]);
  out.push([['stack'], 'layers'], [['program'], 'threads']);
  const ts = at(c, ['program', 'threads']);
  if (Array.isArray(ts)) ts.forEach((_, i) => out.push([['program', 'threads', i], 'ops']));
  for (const p of layerPaths(c)) {
    const l = at(c, p);
    if (!isObj(l)) continue;
    for (const k of ['id', 'kind', ...requiredOf(REQUIRED_LAYER, str(l.kind))]) out.push([p, k]);
  }
  for (const p of opPaths(c)) {
    const o = at(c, p);
    if (!isObj(o)) continue;
    for (const k of ['id', 'kind', ...requiredOf(REQUIRED_OP, str(o.kind))]) out.push([p, k]);
    if (isObj(o.buffer)) for (const k of ['placement', ...requiredOf(REQUIRED_BUFFER, str(o.buffer.placement))]) out.push([[...p, 'buffer'], k]);
  }
  return out;
}

/** References from layers and ops to layers: [path of the reference]. */
function references(c: Json): Path[] {
  const out: Path[] = [];
  for (const p of layerPaths(c)) {
    const l = at(c, p);
    if (!isObj(l)) continue;
    for (const k of ['on', 'origin', 'cow']) if (typeof l[k] === 'string') out.push([...p, k]);
    if (Array.isArray(l.members)) l.members.forEach((_, i) => out.push([...p, 'members', i]));
  }
  for (const p of opPaths(c)) {
    const o = at(c, p);
    if (!isObj(o)) continue;
    if (typeof o.target === 'string') out.push([...p, 'target']);
    if (isObj(o.buffer) && typeof o.buffer.file === 'string') out.push([...p, 'buffer', 'file']);
  }
  return out;
}

function typeOf(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function deep(depth: number, asObject: boolean): Json {
  let v: Json = 'bottom';
  for (let i = 0; i < depth; i++) v = asObject ? { nest: v } : [v];
  return v;
}

// ---- the generators --------------------------------------------------------------------------
// Each generator yields a mutator: a function that breaks a given case (or, when the case no
// longer has what it breaks, leaves it alone), so that mutations can also be chained.

interface Mutated {
  how: string;
  input: Json;
}
type Mutator = (c: Json) => Mutated;

const base = fc.constantFrom(...BASES);
/** Pick one of a list with an index fast-check can shrink. */
const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);
const unchanged = (c: Json): Mutated => ({ how: 'nothing to mutate', input: c });

const deleteRequired = fc.nat().map((i): Mutator => (c) => {
  const f = pick(requiredFields(c), i);
  if (!f) return unchanged(c);
  const [p, k] = f;
  return { how: `delete ${[...p, k].join('.')}`, input: set(c, [...p, k], undefined) };
});

const OTHER_TYPES: Json[] = [null, true, false, 0, 7, 'text', '', [], [1, 'a'], {}, { kind: 'disk' }];
const changeType = fc.tuple(fc.nat(), fc.nat()).map(([i, j]): Mutator => (c) => {
  const n = pick(nodes(c), i)!;
  const v = pick(OTHER_TYPES.filter((x) => typeOf(x) !== typeOf(n.value)), j)!;
  return { how: `${n.path.join('.') || '(root)'}: ${typeOf(n.value)} -> ${JSON.stringify(v)}`, input: set(c, n.path, v) };
});

const KNOWN_KINDS = new Set([...Object.keys(REQUIRED_LAYER), ...Object.keys(REQUIRED_OP)]);
const unknownKind = fc.tuple(fc.nat(), fc.string({ maxLength: 40 }).filter((s) => !KNOWN_KINDS.has(s))).map(([i, kind]): Mutator => (c) => {
  const p = pick([...layerPaths(c), ...opPaths(c)], i);
  if (!p) return unchanged(c);
  return { how: `${p.join('.')}.kind = ${JSON.stringify(kind)}`, input: set(c, [...p, 'kind'], kind) };
});

// No schema field starts with '?' or is one of these; strict objects reject any other key.
const badKey = fc.oneof(
  fc.string({ maxLength: 20 }).map((s) => `?${s}`),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'with\nnewline', 'sizee', 'Kind', ' id'),
);
const unknownField = fc.tuple(fc.nat(), badKey, fc.jsonValue({ maxDepth: 2 })).map(([i, key, value]): Mutator => (c) => {
  const n = pick(nodes(c).filter((x) => isObj(x.value)), i);
  if (!n) return unchanged(c);
  return { how: `${n.path.join('.') || '(root)'} gets field ${JSON.stringify(key)}`, input: set(c, [...n.path, key], value as Json) };
});

const brokenReference = fc.tuple(fc.nat(), fc.constantFrom('zz-missing', 'ghost', 'x0')).map(([i, id]): Mutator => (c) => {
  const p = pick(references(c), i);
  if (!p) return unchanged(c);
  return { how: `${p.join('.')} -> '${id}'`, input: set(c, p, id) };
});

const BAD_NUMBERS = [-1, -4096, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5, 4095.5, 2 ** 53, 2 ** 60, 1e300, -1e300];
const badNumber = fc.tuple(fc.nat(), fc.constantFrom(...BAD_NUMBERS)).map(([i, x]): Mutator => (c) => {
  const n = pick(nodes(c).filter((y) => typeof y.value === 'number'), i);
  if (!n) return unchanged(c);
  return { how: `${n.path.join('.')}: ${String(n.value)} -> ${String(x)}`, input: set(c, n.path, x) };
});

const deepNesting = fc.tuple(fc.nat(), fc.integer({ min: 10, max: 20_000 }), fc.boolean()).map(([i, depth, asObject]): Mutator => (c) => {
  const n = pick(nodes(c), i)!;
  // A nested object where an object is expected might still fit the shape: use arrays there.
  const v = deep(depth, asObject && typeOf(n.value) !== 'object');
  return { how: `${n.path.join('.') || '(root)'} -> nested ${depth} deep`, input: set(c, n.path, v) };
});

const duplicateOpId = fc.tuple(fc.nat(), fc.nat()).map(([i, j]): Mutator => (c) => {
  const ops = opPaths(c);
  const a = pick(ops, i);
  const b = a && pick(ops.filter((p) => p.join('.') !== a.join('.')), j);
  const id = a && at(c, [...a, 'id']);
  if (!a || !b || id === undefined) return unchanged(c);
  return { how: `${b.join('.')}.id = id of ${a.join('.')}`, input: set(c, [...b, 'id'], id) };
});

const MALFORMED: Record<string, fc.Arbitrary<Mutator>> = {
  'delete a required field': deleteRequired,
  'change a type': changeType,
  'unknown kind': unknownKind,
  'unknown field': unknownField,
  'broken reference': brokenReference,
  'number out of range': badNumber,
  'deep nesting': deepNesting,
  'duplicate op id': duplicateOpId,
};

// ---- the properties -------------------------------------------------------------------------

function validateNoThrow(input: unknown): ValidationResult {
  let r: ValidationResult | undefined;
  expect(() => {
    r = validateCase(input);
  }).not.toThrow();
  return r!;
}

function expectWellFormedIssues(r: ValidationResult, how: string): void {
  if (r.ok) return;
  expect(r.issues.length, how).toBeGreaterThan(0);
  for (const i of r.issues) {
    expect(typeof i.path, how).toBe('string');
    expect(i.path.length, how).toBeGreaterThan(0);
    expect(i.message.length, how).toBeGreaterThan(0);
    expect(i.message, how).not.toMatch(/[\r\n]/);
    expect(i.message, how).not.toMatch(/internal validation error/);
  }
}

describe('malformed cases', () => {
  it('the bases are valid (so every failure below comes from the mutation)', () => {
    for (const b of BASES) expect(validateCase(b).ok).toBe(true);
  });

  for (const [name, gen] of Object.entries(MALFORMED)) {
    it(`${name}: never throws; ok:false with paths and one-line messages`, () => {
      fc.assert(
        fc.property(base, gen, (c, mutate) => {
          const { how, input } = mutate(c);
          expect(how).not.toBe('nothing to mutate');
          const r = validateNoThrow(input);
          expect(r.ok, `${how} was accepted`).toBe(false);
          expectWellFormedIssues(r, how);
        }),
        RUNS,
      );
    });
  }

  it('several mutations in a row', () => {
    fc.assert(
      fc.property(base, fc.array(fc.oneof(...Object.values(MALFORMED)), { minLength: 2, maxLength: 4 }), (c, mutators) => {
        let input = c;
        const hows: string[] = [];
        for (const m of mutators) {
          const r = m(input);
          input = r.input;
          hows.push(r.how);
        }
        // The first mutation always applies to a valid base; later ones keep the case broken.
        const r = validateNoThrow(input);
        expect(r.ok, hows.join('; ')).toBe(false);
        expectWellFormedIssues(r, hows.join('; '));
      }),
      { numRuns: 300 },
    );
  });

  it('a valid case with any node replaced by any JSON value: never throws, issues well formed', () => {
    fc.assert(
      fc.property(base, fc.nat(), fc.jsonValue({ maxDepth: 4 }), (c, i, v) => {
        const n = pick(nodes(c), i)!;
        const r = validateNoThrow(set(c, n.path, v as Json));
        expectWellFormedIssues(r, `${n.path.join('.')} -> ${JSON.stringify(v)}`);
      }),
      { numRuns: 1000 },
    );
  });

  it('numbers anywhere in range, and references rewired to any layer of the stack: never throws, issues well formed', () => {
    // These may or may not leave a valid case (a sparser disk, a loop on another file); the
    // semantic checks must answer either way, never crash on a stack that makes no sense.
    const layerIds = (c: Json) => layerPaths(c).map((p) => at(c, [...p, 'id'])).filter((x): x is string => typeof x === 'string');
    const anyInt = fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom(0, 1, 511, 512, 4095, 4096, 2 ** 50));
    fc.assert(
      fc.property(base, fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.nat(), anyInt), { minLength: 1, maxLength: 6 }), (c, edits) => {
        let input = c;
        for (const [rewire, i, j, x] of edits) {
          if (rewire) {
            const p = pick(references(input), i);
            const id = pick(layerIds(input), j);
            if (p && id) input = set(input, p, id);
          } else {
            const n = pick(nodes(input).filter((y) => typeof y.value === 'number'), i);
            if (n) input = set(input, n.path, x);
          }
        }
        expectWellFormedIssues(validateNoThrow(input), JSON.stringify(input));
      }),
      { numRuns: 2 * RUNS.numRuns },
    );
  });

  it('arbitrary JSON is never a case, and never throws', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = validateNoThrow(v);
        expect(r.ok).toBe(false);
        expectWellFormedIssues(r, JSON.stringify(v));
      }),
      { numRuns: 1000 },
    );
  });

  it('arbitrary JS values (undefined, functions, symbols, bigints, cyclic objects) never throw', () => {
    const cyclic: Record<string, unknown> = { format: 'blockfarm-case/1' };
    cyclic.stack = cyclic;
    const odd = [undefined, () => 1, Symbol('s'), 10n, cyclic, new Map(), new Date(0), Object.create(null)];
    for (const v of odd) expectWellFormedIssues(validateNoThrow(v), String(typeof v));
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withNullPrototype: true }), (v) => {
        expectWellFormedIssues(validateNoThrow(v), 'anything');
      }),
      { numRuns: 500 },
    );
  });
});
