/**
 * repro.c: a standalone C reproducer of one case, for kernel developers.
 *
 *   gcc -O2 -o repro repro.c -luring -lpthread
 *   ./repro d0=/dev/loop5 f=/mnt/x/data ...     (repro.sh sets the stack up and passes these)
 *   ./repro --pattern SEED OP ADDR LEN          (print pattern bytes, to check the embedded code)
 *
 * It performs the case's ops the way the blockfarm executor does (same
 * syscalls, submission paths, buffer placements, per-thread cached fds and
 * mappings, barriers), prints each op's result, checks it against what the
 * model allowed (tables generated from the model: expectations.ts), reads
 * the judged objects back after dropping caches, prints what it expected and
 * what it got, and exits 1 on a divergence (0 when everything was allowed,
 * 2 for bad arguments, 3 when it could not prepare).
 *
 * The data pattern is the executor's own C code (worker/executor/pattern.h
 * and pattern.c, embedded verbatim: one C source for the executor and every
 * reproducer, checked equal to model/pattern.ts by the tests).
 */
import { readFileSync } from 'node:fs';
import type { Case, Layer, Observation, Op, OpResult, StackInfo } from '../../model/index.ts';
import type { ExecPlan } from '../../worker/executor/protocol.ts';
import { compilePlan } from '../../worker/plan/compile.ts';
import { makeSetupEnv } from '../../worker/plan/env.ts';
import { type CaseExpectations, type OpExpectation, type PieceSpec, caseExpectations } from './expectations.ts';

/** fallocate(2) flags and sync_file_range(2) flags, as worker/plan/compile.ts sends them. */
const FALLOC_FLAGS: Record<string, number> = {
  allocate: 0, 'keep-size': 0x01, 'punch-hole': 0x03, 'collapse-range': 0x08, 'zero-range': 0x10, 'zero-range-keep-size': 0x11, 'insert-range': 0x20, 'unshare-range': 0x40,
};
const SFR_FLAGS: Record<string, number> = { write: 0x2, 'wait-write': 0x7 };
const PAGE = 4096;

export class ReproUnsupported extends Error {}

/** A C string literal (ASCII; everything else escaped). */
export function cString(s: string): string {
  let out = '"';
  for (const ch of Buffer.from(s, 'utf8')) {
    if (ch === 0x22) out += '\\"';
    else if (ch === 0x5c) out += '\\\\';
    else if (ch === 0x0a) out += '\\n';
    else if (ch >= 0x20 && ch < 0x7f && ch !== 0x3f) out += String.fromCharCode(ch);
    else out += `\\${ch.toString(8).padStart(3, '0')}`;
  }
  return `${out}"`;
}

/** Text for a C comment: no comment terminator inside. */
function commentText(s: string): string {
  return s.replace(/\*\//g, '* /').replace(/[^\x20-\x7e\n]/g, '?');
}

function i64(n: number): string {
  return `${n}LL`;
}

let embeddedPattern: string | undefined;

/** worker/executor/pattern.h + pattern.c, with the local include removed. */
export function patternSource(): string {
  if (!embeddedPattern) {
    const h = readFileSync(new URL('../../worker/executor/pattern.h', import.meta.url), 'utf8');
    const c = readFileSync(new URL('../../worker/executor/pattern.c', import.meta.url), 'utf8');
    embeddedPattern = `${h}\n${c.replace(/^#include "pattern\.h"\s*$/m, '/* (pattern.h is above) */')}`;
  }
  return embeddedPattern;
}

/** The objects a reproducer needs paths for, in stack order: what ops name (targets, mmap buffers) and what is read back. */
export function reproObjects(c: Case, info: StackInfo, exp?: CaseExpectations): string[] {
  const ids = new Set<string>();
  for (const t of c.program.threads)
    for (const op of t.ops) {
      if ('target' in op && !EXEC_KINDS.has(op.kind)) ids.add(op.target);
      if ((op.kind === 'read' || op.kind === 'write') && op.buffer.placement === 'mmap') ids.add(op.buffer.file);
    }
  for (const f of exp?.final ?? []) ids.add(f.obj);
  return info.order.map((l) => l.id).filter((id) => ids.has(id));
}

/** Ops the executor runs as commands (argv arrays from the layer modules), as repro.c does too. */
export const EXEC_KINDS: ReadonlySet<string> = new Set(['remount', 'md-fail', 'dm-suspend', 'dm-resume', 'dm-reload', 'snapshot-create', 'snapshot-remove', 'snapshot-merge']);

/** The environment every reproducer's commands are compiled for: ${WORK} and ${PFX} are filled in at run time. */
export function reproEnv(c: Case, info: StackInfo) {
  return makeSetupEnv({ workDir: '${WORK}', namePrefix: '${PFX}', seed: c.seed, info, disks: 'loop-file' });
}

const TEMPLATE_VAR = /\$\{([A-Za-z0-9_-]+)\}/g;

/** The ${names} the case's commands use, in order of first use. */
export function reproVars(plan: ExecPlan): string[] {
  const out = new Set<string>();
  for (const t of plan.threads)
    for (const op of t)
      if (op.kind === 'exec') for (const s of [...op.argvs.flat(), ...(op.closePrefix ? [op.closePrefix] : [])]) for (const m of s.matchAll(TEMPLATE_VAR)) out.add(m[1]!);
  return [...out];
}

/** The case compiled as the targets compile it (for the commands of exec ops). */
export function reproPlan(c: Case, info: StackInfo): ExecPlan {
  const compiled = compilePlan(c, info, reproEnv(c, info));
  if (!compiled.ok) throw new ReproUnsupported(compiled.unsupported);
  return compiled.plan;
}

interface Gen {
  objIndex: Map<string, number>;
  decls: string[];
}

function srcKind(k: string): string {
  return { zero: 'S_ZERO', any: 'S_ANY', error: 'S_ERROR', noise: 'S_NOISE', op: 'S_OP' }[k] ?? 'S_ANY';
}

function piecesDecl(g: Gen, name: string, pieces: PieceSpec[]): string {
  const rows = pieces.map((p, i) => {
    const srcName = `${name}_S${i}`;
    const srcs = p.sources.map((s) => (s.kind === 'op' ? `{ S_OP, ${s.op}u, ${i64(s.delta)} }` : `{ ${srcKind(s.kind)}, 0, 0 }`));
    g.decls.push(`static const struct src ${srcName}[] = { ${srcs.join(', ') || '{ S_ANY, 0, 0 }'} };`);
    return `\t{ ${i64(p.start)}, ${i64(p.end)}, ${p.mustError ? 1 : 0}, ${Math.max(1, p.sources.length)}, ${srcName} },`;
  });
  g.decls.push(`static const struct piece ${name}[] = {\n${rows.join('\n') || '\t{ 0, 0, 0, 0, 0 },'}\n};`);
  return name;
}

function opWhat(op: Op, info: StackInfo): string {
  const on = 'target' in op ? ` ${op.target}` : '';
  switch (op.kind) {
    case 'read':
    case 'write': {
      const flags = [op.via, op.direct ? 'O_DIRECT' : 'buffered', op.nowait ? 'RWF_NOWAIT' : '', op.kind === 'write' && op.dsync ? 'dsync' : '', op.vectors > 1 ? `${op.vectors} iovecs` : '', op.buffer.placement !== 'heap' ? `${op.buffer.placement} buffer` : '', op.buffer.align ? `buffer+${op.buffer.align}` : ''].filter(Boolean);
      return `${op.kind}${on} [${op.offset}, +${op.length}) ${flags.join(' ')}`;
    }
    case 'mmap-read':
    case 'mmap-write':
    case 'fallocate':
    case 'discard':
    case 'corrupt':
      return `${op.kind}${'mode' in op ? `(${op.mode})` : ''}${on} [${op.offset}, +${op.length})`;
    case 'sync-file-range':
      return `sync-file-range${on} [${op.offset}, +${op.length}) ${op.flags}`;
    case 'truncate':
      return `truncate${on} to ${op.size}`;
    case 'loop-set-block-size':
      return `LOOP_SET_BLOCK_SIZE${on} ${op.size}`;
    case 'loop-set-direct-io':
      return `LOOP_SET_DIRECT_IO${on} ${op.on ? 'on' : 'off'}`;
    case 'barrier':
      return `barrier ${op.name}`;
    case 'sleep':
      return `sleep ${op.ms} ms`;
    case 'remount': {
      const l = info.layer(op.target);
      return `remount${on} (${op.mode}${l?.kind === 'fs' ? `, ${l.type}` : ''})`;
    }
    default:
      return `${op.kind}${on}`;
  }
}

function mmapWindows(c: Case): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of c.program.threads)
    for (const op of t.ops) {
      if (op.kind !== 'mmap-write' && op.kind !== 'mmap-read') continue;
      const end = Math.ceil((op.offset + op.length) / PAGE) * PAGE;
      out.set(op.target, Math.max(out.get(op.target) ?? PAGE, end));
    }
  return out;
}

/** The predicted data of a read as pieces with one source each (absolute offsets). */
function predictedPieces(r: OpResult | undefined, x: OpExpectation | undefined): PieceSpec[] {
  if (!r?.data || !x?.read) return [];
  return r.data.map((d): PieceSpec => {
    const start = x.read!.offset + d.offset;
    const src = d.src === 'zero' ? { kind: 'zero' as const } : d.src === 'unknown' || d.src === 'error' ? { kind: 'any' as const } : { kind: 'op' as const, op: d.src.op, delta: d.src.delta };
    return { start, end: start + d.length, sources: [src], mustError: false };
  });
}

function expectInit(g: Gen, name: string, x: OpExpectation | undefined, pred: OpResult | undefined): string {
  const predicted = pred ? `${i64(pred.ret)}, ${pred.errno ? cString(pred.errno) : pred.signal ? cString(pred.signal) : '0'}` : '0, 0';
  if (!x) return `{ 0, 0, 1, 0, 0, 0, 0, 0, 0, -1, 0, 0, ${cString('(not tabled)')}, 0, 0, 0, ${predicted}, 0, 0 }`;
  const counts = `${name}_COUNTS`;
  g.decls.push(`static const int64_t ${counts}[] = { ${x.counts.map(i64).join(', ') || '0'} };`);
  const errs = `${name}_ERRNOS`;
  g.decls.push(`static const char *const ${errs}[] = { ${x.errnos.map(cString).join(', ') || '0'} };`);
  const pieces = x.read ? piecesDecl(g, `${name}_PIECES`, x.read.pieces) : '0';
  const pp = predictedPieces(pred, x);
  const ppName = pp.length ? piecesDecl(g, `${name}_PRED`, pp) : '0';
  const text = x.reasons.length ? `${x.text} (${x.reasons.join('; ')})` : x.text;
  return `{ ${x.checked ? 1 : 0}, ${x.racing ? 1 : 0}, ${x.success ? 1 : 0}, ${x.partialAny ? 1 : 0}, ${x.partialOnErrors ? 1 : 0}, ${x.signal ? 1 : 0}, ${x.mustSignal ? 1 : 0}, ${x.counts.length}, ${counts}, ${x.minCount !== undefined ? i64(x.minCount) : '-1'}, ${x.errnos.length}, ${errs}, ${cString(text)}, ${x.read ? i64(x.read.offset) : '0'}, ${x.read ? x.read.pieces.length : 0}, ${pieces}, ${predicted}, ${pp.length}, ${ppName} }`;
}

/** At most this many geometry variants of the tables (combinations of the block sizes the kernel may pick). */
const MAX_VARIANTS = 16;

/**
 * Objects whose logical block size the kernel picks (a loop device without
 * one set): the tables are made once per combination, and repro.c uses the
 * one matching what it finds.
 */
function geometryVariants(c: Case, info: StackInfo, objects: readonly string[]): { objs: string[]; combos: number[][] } {
  const objs = objects.filter((id) => (info.layer(id)?.kind !== 'file' && (info.geometry(id)?.logicalBlockSizes.length ?? 1) > 1));
  let combos: number[][] = [[]];
  for (const id of objs) {
    const next: number[][] = [];
    for (const combo of combos) for (const lbs of info.geometry(id)!.logicalBlockSizes) next.push([...combo, lbs]);
    combos = next.slice(0, MAX_VARIANTS);
  }
  return { objs, combos };
}

export interface ReproCOptions {
  /** Header lines (title, signature, kernels, date...). */
  header: string[];
  /**
   * A run of this case that showed the finding (its per-op results and
   * geometry): the tables then follow the path the kernel took in it, so a
   * reproduction on the same path is checked to the end. Without it they
   * follow the model's own predictions.
   */
  observation?: Observation;
}

/** The whole repro.c for a validated case. Throws ReproUnsupported for ops it cannot do (dm control ops). */
export function generateReproC(c: Case, info: StackInfo, opts: ReproCOptions): string {
  const seen = opts.observation;
  const steering = seen ? new Map(seen.results.map((r) => [r.op, r])) : undefined;
  const base = caseExpectations(c, info, seen?.geometry ?? {}, steering);
  const objects = reproObjects(c, info, base);
  const geo = geometryVariants(c, info, objects);
  const observedFor = (combo: number[]) =>
    Object.fromEntries(
      geo.objs.map((id, k) => {
        const b = info.geometry(id)!;
        return [id, { size: b.sizeMax, logicalBlockSize: combo[k]!, physicalBlockSize: Math.max(b.physicalBlockSize, combo[k]!) }];
      }),
    );
  // The combination the observed run had is steered by it; the others follow the model's predictions.
  const variants = geo.combos.map((combo) => {
    if (!geo.objs.length) return base;
    const same = seen && geo.objs.every((id, k) => seen.geometry[id]?.logicalBlockSize === combo[k]);
    return same ? caseExpectations(c, info, { ...seen.geometry }, steering) : caseExpectations(c, info, { ...(seen?.geometry ?? {}), ...observedFor(combo) });
  });
  const exp = variants[0]!;
  const plan = reproPlan(c, info);
  const planOps = new Map(plan.threads.flat().map((p) => [p.id, p]));
  const vars = reproVars(plan);
  const g: Gen = { objIndex: new Map(objects.map((id, i) => [id, i])), decls: [] };
  const obj = (id: string | undefined) => (id === undefined ? -1 : g.objIndex.get(id) ?? -1);
  const windows = mmapWindows(c);
  const ops: Array<{ op: Op; thread: number }> = [];
  c.program.threads.forEach((t, ti) => t.ops.forEach((op) => ops.push({ op, thread: ti })));

  const rows: string[] = [];
  ops.forEach(({ op, thread }, i) => {
    const name = `OP${i}`;
    let kind: string;
    const f = { offset: 0, length: 0, size: 0, mode: 0, mapLength: 0, via: 'V_PSYNC', nowait: 0, direct: 0, dsync: 0, vectors: 1, on: 0, buf: 'B_HEAP', bufAlign: 0, bufObj: -1, bufTouched: 0, bufOffset: 0 };
    let exec = '0, 0, 0';
    switch (op.kind) {
      case 'read':
      case 'write': {
        kind = op.kind === 'read' ? 'K_READ' : 'K_WRITE';
        Object.assign(f, { offset: op.offset, length: op.length, via: { psync: 'V_PSYNC', pvec: 'V_PVEC', io_uring: 'V_URING' }[op.via], nowait: op.nowait ? 1 : 0, direct: op.direct ? 1 : 0, dsync: op.kind === 'write' && op.dsync ? 1 : 0, vectors: op.vectors });
        const b = op.buffer;
        f.bufAlign = b.align;
        if (b.placement === 'anon') Object.assign(f, { buf: 'B_ANON', bufTouched: b.touchedPages });
        if (b.placement === 'mmap') Object.assign(f, { buf: 'B_MMAP', bufObj: obj(b.file), bufOffset: b.offset });
        break;
      }
      case 'mmap-read':
      case 'mmap-write':
        kind = op.kind === 'mmap-read' ? 'K_MMAP_READ' : 'K_MMAP_WRITE';
        Object.assign(f, { offset: op.offset, length: op.length, mapLength: windows.get(op.target) ?? PAGE });
        break;
      case 'msync':
        kind = 'K_MSYNC';
        Object.assign(f, { mode: { sync: 0, async: 1, invalidate: 2 }[op.mode], mapLength: windows.get(op.target) ?? PAGE });
        break;
      case 'fallocate':
        kind = 'K_FALLOCATE';
        Object.assign(f, { offset: op.offset, length: op.length, mode: FALLOC_FLAGS[op.mode]! });
        break;
      case 'truncate':
        kind = 'K_TRUNCATE';
        f.size = op.size;
        break;
      case 'fsync':
        kind = 'K_FSYNC';
        f.mode = op.dataOnly ? 1 : 0;
        break;
      case 'sync-file-range':
        kind = 'K_SYNC_FILE_RANGE';
        Object.assign(f, { offset: op.offset, length: op.length, mode: SFR_FLAGS[op.flags]! });
        break;
      case 'flush':
        kind = 'K_FLUSH';
        break;
      case 'drop-caches':
        kind = 'K_DROP_CACHES';
        break;
      case 'discard':
        kind = 'K_DISCARD';
        Object.assign(f, { offset: op.offset, length: op.length, mode: { discard: 0, zeroout: 1, secure: 2 }[op.mode] });
        break;
      case 'loop-set-direct-io':
        kind = 'K_LOOP_SET_DIRECT_IO';
        f.on = op.on ? 1 : 0;
        break;
      case 'loop-set-block-size':
        kind = 'K_LOOP_SET_BLOCK_SIZE';
        f.size = op.size;
        break;
      case 'corrupt':
        kind = 'K_CORRUPT';
        Object.assign(f, { offset: op.offset, length: op.length });
        break;
      case 'barrier':
        kind = 'K_BARRIER';
        break;
      case 'sleep':
        kind = 'K_SLEEP';
        f.length = op.ms;
        break;
      case 'remount':
      case 'md-fail':
      case 'dm-suspend':
      case 'dm-resume':
      case 'dm-reload':
      case 'snapshot-create':
      case 'snapshot-remove':
      case 'snapshot-merge': {
        kind = 'K_EXEC';
        const p = planOps.get(op.id);
        if (p?.kind !== 'exec') throw new ReproUnsupported(`op ${op.id} (${op.kind}) did not compile to commands`);
        const argvNames = p.argvs.map((argv, k) => {
          const an = `${name}_ARGV${k}`;
          g.decls.push(`static const char *const ${an}[] = { ${argv.map(cString).join(', ')}, 0 };`);
          return an;
        });
        g.decls.push(`static const char *const *const ${name}_ARGVS[] = { ${argvNames.join(', ')} };`);
        exec = `${p.argvs.length}, ${name}_ARGVS, ${p.closePrefix !== undefined ? cString(p.closePrefix) : '0'}`;
        break;
      }
      default: {
        const unknown = op as Op;
        throw new ReproUnsupported(`repro.c cannot do ${unknown.kind} yet (op ${unknown.id})`);
      }
    }
    const target = 'target' in op ? obj(op.target) : -1;
    const what = commentText(opWhat(op, info));
    rows.push(
      `\t/* ${i}: op ${op.id}, thread ${thread}: ${what} */\n` +
        `\t{ ${op.id}, ${kind}, ${thread}, ${target}, ${cString(opWhat(op, info))}, ${i64(f.offset)}, ${i64(f.length)}, ${i64(f.size)}, ${i64(f.mode)}, ${i64(f.mapLength)}, ` +
        `${f.via}, ${f.nowait}, ${f.direct}, ${f.dsync}, ${f.vectors}, ${f.on}, ${f.buf}, ${f.bufAlign}, ${f.bufObj}, ${i64(f.bufTouched)}, ${i64(f.bufOffset)}, ${exec} },`,
    );
  });

  const threads = c.program.threads.map((_, ti) => {
    const idx = ops.flatMap((x, i) => (x.thread === ti ? [i] : []));
    g.decls.push(`static const int THREAD${ti}[] = { ${idx.join(', ') || '-1'} };`);
    return { name: `THREAD${ti}`, n: idx.length };
  });

  const expectTables: string[] = [];
  const finalTables: string[] = [];
  variants.forEach((vx, v) => {
    const exps = ops.map(({ op }, i) => expectInit(g, `V${v}_OP${i}`, op.kind === 'barrier' || op.kind === 'sleep' ? undefined : vx.ops.get(op.id), op.kind === 'barrier' || op.kind === 'sleep' ? undefined : vx.predicted.get(op.id)));
    g.decls.push(`static const struct expect EXPECT_V${v}[] = {\n${exps.map((e, i) => `\t/* op ${ops[i]!.op.id} */ ${e},`).join('\n')}\n};`);
    expectTables.push(`EXPECT_V${v}`);
    const finals = vx.finalChecked
      ? vx.final.map((fx, k) => {
          const name = `V${v}_FINAL${k}`;
          g.decls.push(`static const int64_t ${name}_SIZES[] = { ${fx.sizes.map(i64).join(', ') || '0'} };`);
          g.decls.push(`static const int64_t ${name}_RANGES[][2] = { ${fx.ranges.map(([s0, e]) => `{ ${i64(s0)}, ${i64(e)} }`).join(', ') || '{ 0, 0 }'} };`);
          const pieces = piecesDecl(g, `${name}_PIECES`, fx.pieces);
          return `\t{ ${obj(fx.obj)}, ${fx.kind === 'file' ? 1 : 0}, ${fx.sizes.length}, ${name}_SIZES, ${fx.ranges.length}, ${name}_RANGES, ${fx.pieces.length}, ${pieces} },`;
        })
      : [];
    g.decls.push(`static const struct final FINALS_V${v}[] = {\n${[...finals, '\t{ -1, 0, 0, 0, 0, 0, 0, 0 },'].join('\n')}\n};`);
    finalTables.push(`FINALS_V${v}`);
  });

  const writers = ops.filter((x) => x.op.kind === 'write' || x.op.kind === 'mmap-write').map((x) => x.op.id);
  const usage = [...objects.map((id) => `${id}=PATH`), ...vars.map((v) => `@${v}=VALUE`)].join(' ');
  const objDescr = objects.map((id) => {
    const l = info.layer(id) as Layer;
    return `${id}: ${l.kind === 'fs' ? `mount point of the ${l.type} filesystem` : l.kind === 'file' ? `file '${l.name}'` : `${l.kind} block device`}`;
  });

  const caseDecls = [
    `#define SEED ${c.seed}u`,
    `#define NOBJ ${objects.length}`,
    `#define NOPS ${ops.length}`,
    `#define NTHREADS ${threads.length}`,
    `#define NVARIANTS ${variants.length}`,
    `#define NGEO ${geo.objs.length}`,
    `static const int GEO_OBJ[] = { ${geo.objs.map((id) => obj(id)).join(', ') || '-1'} };`,
    `static const int64_t GEO_LBS[][${Math.max(1, geo.objs.length)}] = { ${geo.combos.map((cmb) => `{ ${cmb.join(', ') || '0'} }`).join(', ')} };`,
    `#define NWRITERS ${writers.length}`,
    `#define NVARS ${vars.length}`,
    `static const char *const VAR_NAME[] = { ${vars.map(cString).join(', ') || '0'} };`,
    `static const char *const OBJ_NAME[] = { ${objects.map(cString).join(', ') || '0'} };`,
    `static const char *const OBJ_DESCR[] = { ${objDescr.map(cString).join(', ') || '0'} };`,
    `static const char USAGE_OBJS[] = ${cString(usage)};`,
    `static const uint32_t WRITERS[] = { ${writers.map((w) => `${w}u`).join(', ') || '0'} };`,
    ...g.decls,
    `static const struct op OPS[] = {\n${rows.join('\n')}\n};`,
    `static const int *const THREAD_OPS[] = { ${threads.map((t) => t.name).join(', ')} };`,
    `static const int THREAD_LEN[] = { ${threads.map((t) => t.n).join(', ')} };`,
    `static const struct expect *const EXPECTS[] = { ${expectTables.join(', ')} };`,
    `static const struct final *const FINALS[] = { ${finalTables.join(', ')} };`,
  ];

  const header = [
    ...opts.header.map(commentText),
    '',
    'WARNING: this program drives the kernel into a state where it misbehaved.',
    'It may corrupt the devices it is given, hang, or crash the machine it runs on.',
    'Run it in a VM, as root, on scratch devices only (repro.sh builds a stack of loop devices).',
    '',
    'Build:  gcc -O2 -o repro repro.c -luring -lpthread',
    `Run:    ./repro ${usage}`,
    ...objDescr.map((d) => `          ${d}`),
    ...(vars.length
      ? [`        @NAME=VALUE: what \${NAME} stands for in the commands below (repro.sh passes them: WORK its work directory,`, '          PFX the prefix of its dm/md device names, dev_<id> the loop device of a layer, ...)']
      : []),
    'Exit:   0 every op did what the model allows, 1 a divergence, 2 bad arguments, 3 could not prepare',
    '',
    'Data: every write carries pattern(seed, op id, byte address) (see the pattern code below),',
    'so each byte read back names the op that wrote it. Expectations are the blockfarm model\'s,',
    'generated into the tables below; a check in a racing phase allows what any interleaving may leave.',
  ];
  return [
    `/*\n${header.map((l) => (l ? ` * ${l}` : ' *')).join('\n')}\n */`,
    RUNTIME_HEAD,
    '/* ---- the data pattern: worker/executor/pattern.h and pattern.c of blockfarm, verbatim ---- */',
    patternSource(),
    '/* ---- the case ---- */',
    RUNTIME_TYPES,
    caseDecls.join('\n'),
    '/* ---- running and checking ---- */',
    RUNTIME_BODY,
  ].join('\n\n');
}

const RUNTIME_HEAD = String.raw`#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;`;

const RUNTIME_TYPES = String.raw`enum { K_WRITE, K_READ, K_MMAP_WRITE, K_MMAP_READ, K_MSYNC, K_FALLOCATE, K_TRUNCATE, K_FSYNC, K_SYNC_FILE_RANGE, K_FLUSH,
       K_DROP_CACHES, K_DISCARD, K_LOOP_SET_DIRECT_IO, K_LOOP_SET_BLOCK_SIZE, K_CORRUPT, K_BARRIER, K_SLEEP, K_EXEC };
enum { V_PSYNC, V_PVEC, V_URING };
enum { B_HEAP, B_ANON, B_MMAP };
/* What a byte may be: zero, anything, unreadable, damaged (zero or garbage), op N's pattern moved by delta. */
enum { S_ZERO, S_ANY, S_ERROR, S_NOISE, S_OP };

struct src {
	int kind;
	uint32_t op;
	int64_t delta; /* the byte at address a is pattern_byte(SEED, op, a + delta) */
};
struct piece {
	int64_t start, end; /* absolute offsets in the object */
	int must_error;     /* reading here must fail: data is wrong */
	int nsrc;
	const struct src *src;
};
struct expect {
	int checked, racing, success, partial_any, partial_on_errors, signal, must_signal;
	int ncounts;
	const int64_t *counts;
	int64_t min_count; /* -1: none */
	int nerr;
	const char *const *errnos;
	const char *text; /* the model's words */
	int64_t read_offset;
	int npieces;
	const struct piece *pieces;
	/* What the model predicts this op returns: the tables of later ops assume it did. */
	int64_t pred_ret;
	const char *pred_err; /* errno or signal name when pred_ret < 0 */
	int npred;
	const struct piece *pred; /* reads: the predicted bytes */
};
struct op {
	int id, kind, thread, obj;
	const char *what;
	int64_t offset, length, size, mode, map_length;
	int via, nowait, direct, dsync, vectors, on;
	int buf, buf_align, buf_obj;
	int64_t buf_touched, buf_offset;
	int nargv;                        /* K_EXEC: commands, run in order */
	const char *const *const *argv;   /* argv templates: a dollar-brace NAME reference is the value of @NAME=VALUE */
	const char *close_prefix;         /* K_EXEC: first close the fds and mappings of paths starting with this */
};
struct final {
	int obj, is_file, nsizes;
	const int64_t *sizes;
	int nranges;
	const int64_t (*ranges)[2];
	int npieces;
	const struct piece *pieces;
};`;

const RUNTIME_BODY = String.raw`#define POISON 0xee
#define PAGE 4096

static const char *obj_path[NOBJ > 0 ? NOBJ : 1];
static pthread_barrier_t barrier;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int divergences;

static const struct { int e; const char *name; } ERRNAMES[] = {
#define N(x) { x, #x }
	N(EPERM), N(ENOENT), N(EINTR), N(EIO), N(ENXIO), N(EBADF), N(EAGAIN), N(ENOMEM), N(EACCES), N(EFAULT), N(ENOTBLK),
	N(EBUSY), N(EEXIST), N(EXDEV), N(ENODEV), N(ENOTDIR), N(EISDIR), N(EINVAL), N(ENFILE), N(EMFILE), N(ENOTTY),
	N(ETXTBSY), N(EFBIG), N(ENOSPC), N(ESPIPE), N(EROFS), N(EMLINK), N(EPIPE), N(ERANGE), N(EDEADLK), N(ENAMETOOLONG),
	N(ENOLCK), N(ENOSYS), N(ENODATA), N(ETIME), N(EBADMSG), N(EOVERFLOW), N(EILSEQ), N(EOPNOTSUPP), N(ETIMEDOUT),
	N(ESTALE), N(EUCLEAN), N(EREMOTEIO), N(EDQUOT), N(ENOMEDIUM), N(ECANCELED), N(EKEYREJECTED), N(EHWPOISON),
#undef N
};

static const char *ename(int e)
{
	if (e == ECHILD)
		return "EEXEC"; /* a command of the op failed, as the executor names it */
	for (size_t k = 0; k < sizeof ERRNAMES / sizeof ERRNAMES[0]; k++)
		if (ERRNAMES[k].e == e)
			return ERRNAMES[k].name;
	static __thread char buf[24];
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

/* ------------------------------------------------------------ per-thread fds, mappings, ring */

struct fdent { int obj, fd; bool direct, dsync, writable; };
struct mapent { int obj, fd; uint8_t *addr; size_t len; };
struct tstate {
	struct fdent fds[64];
	int nfds;
	struct mapent maps[16];
	int nmaps;
	struct io_uring ring;
	bool ring_ready;
	int id;
};
static struct tstate tstates[NTHREADS];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* An fd per (object, O_DIRECT, O_DSYNC), kept for the thread's life, as the executor does. 0 or an errno. */
static int get_fd(struct tstate *ts, int obj, bool direct, bool dsync, bool need_write, int *out)
{
	for (int k = 0; k < ts->nfds; k++) {
		struct fdent *f = &ts->fds[k];
		if (f->obj == obj && f->direct == direct && f->dsync == dsync && (f->writable || !need_write)) {
			*out = f->fd;
			return 0;
		}
	}
	int flags = O_CLOEXEC | (direct ? O_DIRECT : 0) | (dsync ? O_DSYNC : 0);
	bool writable = true;
	int fd = open(obj_path[obj], O_RDWR | flags);
	if (fd < 0 && !need_write && (errno == EROFS || errno == EACCES || errno == EPERM)) {
		writable = false;
		fd = open(obj_path[obj], O_RDONLY | flags);
	}
	if (fd < 0)
		return errno;
	if (ts->nfds == (int)(sizeof ts->fds / sizeof ts->fds[0])) {
		close(fd);
		return EMFILE;
	}
	ts->fds[ts->nfds++] = (struct fdent){ .obj = obj, .fd = fd, .direct = direct, .dsync = dsync, .writable = writable };
	*out = fd;
	return 0;
}

static int get_map(struct tstate *ts, int obj, size_t len, struct mapent **out)
{
	for (int k = 0; k < ts->nmaps; k++) {
		struct mapent *m = &ts->maps[k];
		if (m->obj != obj)
			continue;
		if (m->len == len) {
			*out = m;
			return 0;
		}
		munmap(m->addr, m->len);
		close(m->fd);
		ts->maps[k] = ts->maps[--ts->nmaps];
		break;
	}
	int fd = open(obj_path[obj], O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	void *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		int e = errno;
		close(fd);
		return e;
	}
	if (ts->nmaps == (int)(sizeof ts->maps / sizeof ts->maps[0])) {
		munmap(a, len);
		close(fd);
		return ENOMEM;
	}
	ts->maps[ts->nmaps] = (struct mapent){ .obj = obj, .fd = fd, .addr = a, .len = len };
	*out = &ts->maps[ts->nmaps++];
	return 0;
}

/* Before a command that unmounts or removes a device: close every fd and mapping of paths starting with prefix. */
static void close_prefix(const char *prefix)
{
	size_t n = strlen(prefix);
	pthread_mutex_lock(&cache_mu);
	for (int t = 0; t < NTHREADS; t++) {
		struct tstate *ts = &tstates[t];
		for (int k = 0; k < ts->nfds;) {
			if (!strncmp(obj_path[ts->fds[k].obj], prefix, n)) {
				close(ts->fds[k].fd);
				ts->fds[k] = ts->fds[--ts->nfds];
			} else
				k++;
		}
		for (int k = 0; k < ts->nmaps;) {
			if (!strncmp(obj_path[ts->maps[k].obj], prefix, n)) {
				munmap(ts->maps[k].addr, ts->maps[k].len);
				close(ts->maps[k].fd);
				ts->maps[k] = ts->maps[--ts->nmaps];
			} else
				k++;
		}
	}
	pthread_mutex_unlock(&cache_mu);
}

/* ------------------------------------------------------------ command templates */

static const char *var_value[NVARS > 0 ? NVARS : 1];

/* Each dollar-brace NAME reference replaced by the value given as @NAME=VALUE; false if the result does not fit. */
static bool subst(char *out, size_t len, const char *tmpl)
{
	size_t o = 0;
	for (const char *p = tmpl; *p;) {
		if (p[0] == '$' && p[1] == '{') {
			const char *end = strchr(p, '}');
			int k = 0;
			for (; end && k < NVARS; k++)
				if (strlen(VAR_NAME[k]) == (size_t)(end - p - 2) && !strncmp(VAR_NAME[k], p + 2, (size_t)(end - p - 2)))
					break;
			if (end && k < NVARS) {
				size_t n = strlen(var_value[k]);
				if (o + n >= len)
					return false;
				memcpy(out + o, var_value[k], n);
				o += n;
				p = end + 1;
				continue;
			}
		}
		if (o + 1 >= len)
			return false;
		out[o++] = *p++;
	}
	out[o] = 0;
	return true;
}

/* ------------------------------------------------------------ faults in mappings */

static __thread sigjmp_buf *guard_jb;

static void on_fault(int sig)
{
	if (guard_jb)
		siglongjmp(*guard_jb, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Run fn(arg); the signal number if it faulted (SIGBUS past EOF of a mapping), else 0. */
static int guarded(void (*fn)(void *), void *arg)
{
	sigjmp_buf jb;
	int sig = sigsetjmp(jb, 1);
	if (sig) {
		guard_jb = NULL;
		return sig;
	}
	guard_jb = &jb;
	fn(arg);
	guard_jb = NULL;
	return 0;
}

/* ------------------------------------------------------------ buffers (as worker/executor/buffers.c) */

struct buffer { uint8_t *base, *p; size_t size; int placement; };

static int buffer_prepare(struct buffer *b, const struct op *op, bool is_write)
{
	size_t len = (size_t)op->length, align = (size_t)op->buf_align;
	b->size = (align + len + PAGE - 1) / PAGE * PAGE;
	b->placement = op->buf;
	switch (op->buf) {
	case B_HEAP: {
		void *p;
		int e = posix_memalign(&p, PAGE, b->size);
		if (e)
			return e;
		b->base = p;
		b->p = b->base + align;
		if (is_write)
			pattern_fill(b->p, len, SEED, (uint32_t)op->id, op->offset);
		else
			memset(b->p, POISON, len);
		return 0;
	}
	case B_ANON: {
		void *m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return errno;
		b->base = m;
		b->p = b->base + align;
		madvise(m, b->size, MADV_NOHUGEPAGE);
		size_t pages = b->size / PAGE, k = op->buf_touched < 0 ? 0 : (size_t)op->buf_touched > pages ? pages : (size_t)op->buf_touched;
		if (is_write) {
			size_t touched = k * PAGE, filled = touched > align ? touched - align : 0;
			if (filled > len)
				filled = len;
			pattern_fill(b->p, filled, SEED, (uint32_t)op->id, op->offset);
			for (size_t pg = 0; pg < k; pg++)
				if (pg * PAGE + PAGE <= align || pg * PAGE >= align + filled)
					b->base[pg * PAGE] = 0;
		} else
			memset(b->base, POISON, k * PAGE);
		return 0;
	}
	case B_MMAP: {
		int fd = open(obj_path[op->buf_obj], O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return errno;
		void *m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)op->buf_offset);
		int e = errno;
		close(fd);
		if (m == MAP_FAILED)
			return e;
		b->base = m;
		b->p = b->base + align;
		return 0;
	}
	}
	return EINVAL;
}

static void buffer_release(struct buffer *b)
{
	if (!b->base)
		return;
	if (b->placement == B_HEAP)
		free(b->base);
	else
		munmap(b->base, b->size);
	b->base = NULL;
}

/* ------------------------------------------------------------ results and checks */

struct result {
	int64_t ret; /* bytes, 0, or -1 */
	int err;     /* errno when ret < 0 */
	int sig;     /* SIGBUS/SIGSEGV in a mapping */
	uint8_t *data; /* reads: the bytes returned (malloc'd copy) */
	int64_t us;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool byte_allowed(const struct piece *p, uint8_t b, int64_t addr)
{
	if (p->must_error)
		return false;
	for (int k = 0; k < p->nsrc; k++) {
		const struct src *s = &p->src[k];
		switch (s->kind) {
		case S_ANY:
		case S_NOISE:
			return true;
		case S_ZERO:
			if (b == 0)
				return true;
			break;
		case S_OP:
			if (pattern_byte(SEED, s->op, addr + s->delta) == b)
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

/* Words for what bytes [addr, addr+n) that start at p are: zeroes, poison, op N's data, or garbage. */
static void describe_got(char *out, size_t len, const uint8_t *p, size_t n, int64_t addr)
{
	size_t look = n < 8 ? n : 8;
	bool zero = true, poison = true;
	for (size_t i = 0; i < look; i++) {
		zero &= p[i] == 0;
		poison &= p[i] == POISON;
	}
	if (zero) {
		snprintf(out, len, "zeroes");
		return;
	}
	if (poison) {
		snprintf(out, len, "bytes the kernel never wrote into the buffer (still the poison 0x%02x)", POISON);
		return;
	}
	static const int64_t deltas[] = { 0, 512, -512, 1024, -1024, 2048, -2048, 4096, -4096 };
	for (int w = 0; w < NWRITERS; w++)
		for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
			uint32_t key = pattern_key(SEED, WRITERS[w]);
			if (pattern_match(p, look, key, addr + deltas[d]) == look) {
				if (deltas[d])
					snprintf(out, len, "op %u's data from %+" PRId64 " bytes away", WRITERS[w], deltas[d]);
				else
					snprintf(out, len, "op %u's data", WRITERS[w]);
				return;
			}
		}
	snprintf(out, len, "bytes no op wrote");
}

static void describe_allowed(char *out, size_t len, const struct piece *p)
{
	size_t used = 0;
	out[0] = 0;
	if (p->must_error) {
		snprintf(out, len, "an error (the bytes are unreadable)");
		return;
	}
	for (int k = 0; k < p->nsrc && used < len; k++) {
		const struct src *s = &p->src[k];
		const char *sep = k ? " | " : "";
		switch (s->kind) {
		case S_ZERO: used += snprintf(out + used, len - used, "%szeroes", sep); break;
		case S_ANY: used += snprintf(out + used, len - used, "%sany bytes", sep); break;
		case S_ERROR: used += snprintf(out + used, len - used, "%san error", sep); break;
		case S_NOISE: used += snprintf(out + used, len - used, "%sdamaged bytes", sep); break;
		default:
			if (s->delta)
				used += snprintf(out + used, len - used, "%sop %u's data (moved by %" PRId64 ")", sep, s->op, -s->delta);
			else
				used += snprintf(out + used, len - used, "%sop %u's data", sep, s->op);
		}
	}
}

static void hex16(char *out, const uint8_t *p, size_t n)
{
	out[0] = 0;
	for (size_t i = 0; i < n && i < 16; i++)
		sprintf(out + 3 * i, "%02x ", p[i]);
}

/* The first byte of [base, base+n) (data at p) that no piece allows; -1 when all are allowed. */
static int64_t first_bad(const struct piece *pieces, int npieces, const uint8_t *p, int64_t n, int64_t base, const struct piece **which)
{
	int k = 0;
	for (int64_t i = 0; i < n; i++) {
		int64_t a = base + i;
		while (k < npieces && pieces[k].end <= a)
			k++;
		if (k >= npieces || pieces[k].start > a)
			continue; /* not tabled: not judged */
		if (!byte_allowed(&pieces[k], p[i], a)) {
			*which = &pieces[k];
			return i;
		}
	}
	return -1;
}

static void divergence(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("  DIVERGENCE: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	divergences++;
}

/* Expected bytes at a: what the first op source of the piece holds there, or zeroes. */
static void expected_bytes(uint8_t *out, size_t n, const struct piece *p, int64_t a)
{
	memset(out, 0, n);
	for (int k = 0; k < p->nsrc; k++)
		if (p->src[k].kind == S_OP) {
			pattern_fill(out, n, SEED, p->src[k].op, a + p->src[k].delta);
			return;
		}
}

static void check_data(const char *obj, const struct piece *pieces, int npieces, const uint8_t *p, int64_t n, int64_t base)
{
	const struct piece *bad = NULL;
	int64_t i = first_bad(pieces, npieces, p, n, base, &bad);
	if (i < 0)
		return;
	char got[160], want[400], he[64], hg[64];
	uint8_t exp[16];
	size_t show = n - i < 16 ? (size_t)(n - i) : 16;
	describe_got(got, sizeof got, p + i, (size_t)(n - i), base + i);
	describe_allowed(want, sizeof want, bad);
	expected_bytes(exp, show, bad, base + i);
	hex16(he, exp, show);
	hex16(hg, p + i, show);
	divergence("at offset %" PRId64 " of '%s' the model allows %s; got %s", base + i, obj, want, got);
	printf("    expected: %s\n    got:      %s\n", he, hg);
}

static void check_against(const struct op *op, const struct expect *x, const struct result *r)
{
	if (r->sig) {
		if (!x->signal)
			divergence("died with %s; the model allows %s", r->sig == SIGBUS ? "SIGBUS" : "SIGSEGV", x->text);
		return;
	}
	if (x->must_signal) {
		divergence("it had to raise SIGBUS: %s", x->text);
		return;
	}
	if (r->ret < 0) {
		for (int k = 0; k < x->nerr; k++)
			if (!strcmp(x->errnos[k], ename(r->err)))
				return;
		divergence("failed with %s; the model allows %s", ename(r->err), x->text);
		return;
	}
	if (!x->success) {
		divergence("succeeded; the model allows only %s", x->text);
		return;
	}
	int64_t full = 0;
	bool in = false;
	for (int k = 0; k < x->ncounts; k++) {
		if (x->counts[k] > full)
			full = x->counts[k];
		in |= x->counts[k] == r->ret;
	}
	if (!in) {
		bool short_ok = r->ret < full && ((x->partial_any && r->ret > 0) || x->partial_on_errors || (x->min_count >= 0 && r->ret >= x->min_count));
		if (!short_ok) {
			if ((op->kind == K_READ || op->kind == K_MMAP_READ) && r->ret < full)
				divergence("returned %" PRId64 " of %" PRId64 " bytes below EOF; the model allows %s", r->ret, full, x->text);
			else
				divergence("returned %" PRId64 " bytes; the model allows %s", r->ret, x->text);
			return;
		}
	}
	if (r->data && r->ret > 0 && x->npieces) {
		if (x->racing)
			printf("  (racing phase: checked against what any interleaving of the other threads may leave)\n");
		check_data(OBJ_NAME[op->obj], x->pieces, x->npieces, r->data, r->ret, x->read_offset);
	}
}

/*
 * The tables hold for one path through the program: the geometry they were
 * made for, and every earlier op returning what the model predicts. When the
 * kernel takes another allowed path (a racing read sees the other order, a
 * loop device picks another block size), later checks would judge against
 * the wrong state: they are switched off, with the reason (blockfarm itself
 * judges such runs completely).
 */
static int variant;
static bool tables_on = true;
static char tables_off_why[300];

static void tables_off(const char *fmt, ...)
{
	if (!tables_on)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tables_off_why, sizeof tables_off_why, fmt, ap);
	va_end(ap);
	tables_on = false;
	printf("  (from here on nothing is checked: %s)\n", tables_off_why);
}

static bool as_predicted(const struct op *op, const struct expect *x, const struct result *r, char *why, size_t len)
{
	if (r->sig || r->ret < 0) {
		const char *got = r->sig ? (r->sig == SIGBUS ? "SIGBUS" : "SIGSEGV") : ename(r->err);
		if (x->pred_ret < 0 && x->pred_err && !strcmp(x->pred_err, got))
			return true;
		snprintf(why, len, "op %d returned %s where the tables assume %s%" PRId64, op->id, got, x->pred_ret < 0 ? "an error " : "", x->pred_ret);
		return false;
	}
	if (r->ret != x->pred_ret) {
		snprintf(why, len, "op %d returned %" PRId64 " where the tables assume %" PRId64, op->id, r->ret, x->pred_ret);
		return false;
	}
	if (r->data && x->npred) {
		const struct piece *bad = NULL;
		int64_t i = first_bad(x->pred, x->npred, r->data, r->ret, x->read_offset, &bad);
		if (i >= 0) {
			snprintf(why, len, "op %d read other allowed data at offset %" PRId64 " than the tables assume", op->id, x->read_offset + i);
			return false;
		}
	}
	return true;
}

static void check(const struct op *op, const struct result *r)
{
	const struct expect *x = &EXPECTS[variant][op - OPS];
	if (r->sig)
		printf("op %d (thread %d) %s: died with %s\n", op->id, op->thread, op->what, r->sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
	else if (r->ret < 0)
		printf("op %d (thread %d) %s: %s\n", op->id, op->thread, op->what, ename(r->err));
	else
		printf("op %d (thread %d) %s: ok, %" PRId64 "%s\n", op->id, op->thread, op->what, r->ret,
		       op->kind == K_READ || op->kind == K_WRITE || op->kind == K_MMAP_READ || op->kind == K_MMAP_WRITE ? " bytes" : "");
	if (op->kind == K_BARRIER || op->kind == K_SLEEP || !tables_on)
		return;
	if (!x->checked) {
		tables_off("op %d is in a racing phase the model settles by exploring interleavings", op->id);
		return;
	}
	int before = divergences;
	check_against(op, x, r);
	char why[300];
	if (divergences != before)
		tables_off("the tables assume op %d did what the model allows", op->id);
	else if (!as_predicted(op, x, r, why, sizeof why))
		tables_off("%s", why);
}

/* ------------------------------------------------------------ the ops (as worker/executor/io.c) */

static int cut_iovecs(struct iovec *iov, uint8_t *p, size_t len, int vectors)
{
	size_t n = (size_t)vectors < len ? (size_t)vectors : len;
	size_t part = len / n;
	for (size_t k = 0; k < n; k++) {
		iov[k].iov_base = p + k * part;
		iov[k].iov_len = k == n - 1 ? len - part * (n - 1) : part;
	}
	return (int)n;
}

static int64_t uring_rw(struct tstate *ts, bool write, int fd, const struct iovec *iov, int n, int64_t off, int flags)
{
	if (!ts->ring_ready) {
		int e = io_uring_queue_init(8, &ts->ring, 0);
		if (e < 0)
			return e;
		ts->ring_ready = true;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ts->ring);
	if (!sqe)
		return -EBUSY;
	if (write)
		io_uring_prep_writev(sqe, fd, iov, (unsigned)n, (uint64_t)off);
	else
		io_uring_prep_readv(sqe, fd, iov, (unsigned)n, (uint64_t)off);
	sqe->rw_flags = flags;
	int s = io_uring_submit(&ts->ring);
	if (s < 0)
		return s;
	struct io_uring_cqe *cqe;
	int e;
	while ((e = io_uring_wait_cqe(&ts->ring, &cqe)) == -EINTR || e == -EAGAIN) {
	}
	if (e)
		return e;
	int res = cqe->res;
	io_uring_cqe_seen(&ts->ring, cqe);
	return res;
}

static void set_ret(struct result *r, int64_t ret)
{
	if (ret < 0) {
		r->ret = -1;
		r->err = (int)-ret;
	} else
		r->ret = ret;
}

static void do_data(struct tstate *ts, const struct op *op, struct result *r)
{
	bool wr = op->kind == K_WRITE;
	size_t len = (size_t)op->length;
	int fd, e;
	pthread_mutex_lock(&cache_mu);
	e = get_fd(ts, op->obj, op->direct, wr && op->dsync && op->via == V_PSYNC, wr, &fd);
	pthread_mutex_unlock(&cache_mu);
	if (e)
		return set_ret(r, -e);
	struct buffer b = { 0 };
	if ((e = buffer_prepare(&b, op, wr)))
		return set_ret(r, -e);
	struct iovec iov[64];
	int niov = cut_iovecs(iov, b.p, len, op->vectors);
	int flags = (op->nowait ? RWF_NOWAIT : 0) | (wr && op->dsync ? RWF_DSYNC : 0);
	int64_t ret, t0 = now_us();
	switch (op->via) {
	case V_PSYNC:
		ret = wr ? pwrite(fd, b.p, len, op->offset) : pread(fd, b.p, len, op->offset);
		break;
	case V_PVEC:
		ret = wr ? pwritev2(fd, iov, niov, op->offset, flags) : preadv2(fd, iov, niov, op->offset, flags);
		break;
	default:
		ret = uring_rw(ts, wr, fd, iov, niov, op->offset, flags);
	}
	if (ret < 0 && op->via != V_URING)
		ret = -errno;
	r->us = now_us() - t0;
	set_ret(r, ret);
	if (!wr && ret > 0 && (r->data = malloc((size_t)ret)))
		memcpy(r->data, b.p, (size_t)ret);
	buffer_release(&b);
}

struct mem_args { uint8_t *p, *copy; size_t n; const struct op *op; };

static void store_fn(void *a)
{
	struct mem_args *m = a;
	pattern_fill(m->p, m->n, SEED, (uint32_t)m->op->id, m->op->offset);
}

static void load_fn(void *a)
{
	struct mem_args *m = a;
	memcpy(m->copy, m->p, m->n);
}

static void do_mmap_access(struct tstate *ts, const struct op *op, struct result *r)
{
	struct mapent *m;
	pthread_mutex_lock(&cache_mu);
	int e = get_map(ts, op->obj, (size_t)op->map_length, &m);
	pthread_mutex_unlock(&cache_mu);
	if (e)
		return set_ret(r, -e);
	bool store = op->kind == K_MMAP_WRITE;
	struct mem_args a = { .p = m->addr + op->offset, .n = (size_t)op->length, .op = op };
	if (!store && !(a.copy = malloc(a.n)))
		return set_ret(r, -ENOMEM);
	int sig = guarded(store ? store_fn : load_fn, &a);
	if (sig) {
		r->ret = -1;
		r->sig = sig;
		free(a.copy);
	} else {
		r->ret = op->length;
		r->data = a.copy;
	}
}

static void noise_fill(uint8_t *p, size_t n, uint32_t seed, int64_t op)
{
	uint64_t s = ((uint64_t)seed << 32 | (uint32_t)op) ^ 0x6a09e667f3bcc909ULL;
	for (size_t k = 0; k < n; k += 8) {
		uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(p + k, &z, n - k < 8 ? n - k : 8);
	}
}

static int64_t write_all(int fd, const uint8_t *p, size_t n, int64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = pwrite(fd, p + done, n - done, off + (int64_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		done += (size_t)k;
	}
	return 0;
}

static void do_corrupt(const struct op *op, struct result *r)
{
	size_t n = (size_t)op->length;
	bool aligned = op->offset % 512 == 0 && n % 512 == 0;
	void *buf;
	int e = posix_memalign(&buf, PAGE, n);
	if (e)
		return set_ret(r, -e);
	noise_fill(buf, n, SEED, op->id);
	int fd = aligned ? open(obj_path[op->obj], O_RDWR | O_CLOEXEC | O_DIRECT) : -1;
	int64_t rc = fd >= 0 ? write_all(fd, buf, n, op->offset) : -EINVAL;
	if (rc == -EINVAL) {
		if (fd >= 0)
			close(fd);
		fd = open(obj_path[op->obj], O_RDWR | O_CLOEXEC);
		rc = fd >= 0 ? write_all(fd, buf, n, op->offset) : -errno;
	}
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	set_ret(r, rc);
}

static int drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int e = write(fd, "3\n", 2) == 2 ? 0 : errno;
	close(fd);
	return e;
}

static void do_exec(const struct op *op, struct result *r)
{
	static char bufs[64][4096];
	static pthread_mutex_t exec_mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&exec_mu);
	if (op->close_prefix && subst(bufs[0], sizeof bufs[0], op->close_prefix))
		close_prefix(bufs[0]);
	r->ret = 0;
	for (int k = 0; k < op->nargv; k++) {
		char *argv[64];
		int n = 0;
		for (const char *const *a = op->argv[k]; *a && n < 63; a++, n++) {
			if (!subst(bufs[n], sizeof bufs[n], *a)) {
				r->ret = -1;
				r->err = E2BIG;
				pthread_mutex_unlock(&exec_mu);
				return;
			}
			argv[n] = bufs[n];
		}
		argv[n] = NULL;
		pthread_mutex_lock(&out_mu);
		printf("  op %d runs:", op->id);
		for (int i = 0; i < n; i++)
			printf(" %s", argv[i]);
		printf("\n");
		pthread_mutex_unlock(&out_mu);
		pid_t pid;
		int st;
		if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			/* As the executor reports it: -1 with the failing command (errno name EEXEC there). */
			r->ret = -1;
			r->err = ECHILD;
			break;
		}
	}
	pthread_mutex_unlock(&exec_mu);
}

static void run_op(struct tstate *ts, const struct op *op, struct result *r)
{
	memset(r, 0, sizeof *r);
	int fd, e, rc = 0;
	switch (op->kind) {
	case K_READ:
	case K_WRITE:
		return do_data(ts, op, r);
	case K_MMAP_READ:
	case K_MMAP_WRITE:
		return do_mmap_access(ts, op, r);
	case K_BARRIER:
		pthread_barrier_wait(&barrier);
		return;
	case K_SLEEP:
		usleep((useconds_t)op->length * 1000);
		return;
	case K_DROP_CACHES:
		return set_ret(r, -drop_caches());
	case K_CORRUPT:
		return do_corrupt(op, r);
	case K_EXEC:
		return do_exec(op, r);
	case K_MSYNC: {
		struct mapent *m;
		pthread_mutex_lock(&cache_mu);
		e = get_map(ts, op->obj, (size_t)op->map_length, &m);
		pthread_mutex_unlock(&cache_mu);
		if (e)
			return set_ret(r, -e);
		int flags = op->mode == 0 ? MS_SYNC : op->mode == 1 ? MS_ASYNC : MS_INVALIDATE;
		return set_ret(r, msync(m->addr, m->len, flags) < 0 ? -errno : 0);
	}
	default:
		break;
	}
	bool need_write = op->kind == K_FALLOCATE || op->kind == K_TRUNCATE || op->kind == K_DISCARD;
	pthread_mutex_lock(&cache_mu);
	e = get_fd(ts, op->obj, false, false, need_write, &fd);
	pthread_mutex_unlock(&cache_mu);
	if (e)
		return set_ret(r, -e);
	uint64_t range[2] = { (uint64_t)op->offset, (uint64_t)op->length };
	switch (op->kind) {
	case K_FALLOCATE: rc = fallocate(fd, (int)op->mode, op->offset, op->length); break;
	case K_TRUNCATE: rc = ftruncate(fd, op->size); break;
	case K_FSYNC: rc = op->mode ? fdatasync(fd) : fsync(fd); break;
	case K_SYNC_FILE_RANGE: rc = sync_file_range(fd, op->offset, op->length, (unsigned)op->mode); break;
	case K_FLUSH: rc = ioctl(fd, BLKFLSBUF, 0); break;
	case K_DISCARD: rc = ioctl(fd, op->mode == 1 ? BLKZEROOUT : op->mode == 2 ? BLKSECDISCARD : BLKDISCARD, range); break;
	case K_LOOP_SET_DIRECT_IO: rc = ioctl(fd, LOOP_SET_DIRECT_IO, op->on ? 1UL : 0UL); break;
	case K_LOOP_SET_BLOCK_SIZE: rc = ioctl(fd, LOOP_SET_BLOCK_SIZE, (unsigned long)op->size); break;
	default: rc = -1; errno = EINVAL;
	}
	set_ret(r, rc < 0 ? -errno : 0);
}

static void *thread_main(void *arg)
{
	struct tstate *ts = arg;
	for (int k = 0; k < THREAD_LEN[ts->id]; k++) {
		const struct op *op = &OPS[THREAD_OPS[ts->id][k]];
		struct result r;
		run_op(ts, op, &r);
		pthread_mutex_lock(&out_mu);
		check(op, &r);
		fflush(stdout);
		pthread_mutex_unlock(&out_mu);
		free(r.data);
	}
	return NULL;
}

/* ------------------------------------------------------------ reading back */

static int64_t object_size(int fd, bool is_file)
{
	if (is_file) {
		struct stat st;
		return fstat(fd, &st) < 0 ? -1 : st.st_size;
	}
	uint64_t sz;
	return ioctl(fd, BLKGETSIZE64, &sz) < 0 ? -1 : (int64_t)sz;
}

static bool range_may_error(const struct piece *pieces, int npieces, int64_t s, int64_t e)
{
	for (int k = 0; k < npieces; k++)
		if (pieces[k].start < e && s < pieces[k].end) {
			bool err = pieces[k].must_error;
			for (int j = 0; j < pieces[k].nsrc; j++)
				err |= pieces[k].src[j].kind == S_ERROR || pieces[k].src[j].kind == S_ANY;
			if (!err)
				return false;
		}
	return true;
}

static void final_check(const struct final *f)
{
	const char *name = OBJ_NAME[f->obj];
	int fd = open(obj_path[f->obj], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("final: cannot open '%s' (%s): %s\n", name, obj_path[f->obj], strerror(errno));
		return;
	}
	int64_t size = object_size(fd, f->is_file);
	bool size_ok = !f->is_file;
	for (int k = 0; k < f->nsizes; k++)
		size_ok |= f->sizes[k] == size;
	printf("final: '%s' is %" PRId64 " bytes\n", name, size);
	if (!size_ok) {
		char allowed[256] = "";
		for (int k = 0, used = 0; k < f->nsizes; k++)
			used += snprintf(allowed + used, sizeof allowed - (size_t)used, "%s%" PRId64, k ? " or " : "", f->sizes[k]);
		divergence("'%s' ends %" PRId64 " bytes long; the model allows %s", name, size, allowed);
	}
	const size_t CHUNK = 1 << 20;
	uint8_t *buf = malloc(CHUNK);
	int before = divergences;
	for (int k = 0; k < f->nranges && buf && divergences == before; k++) {
		int64_t end = f->ranges[k][1] < size ? f->ranges[k][1] : size;
		for (int64_t pos = f->ranges[k][0]; pos < end && divergences == before;) {
			size_t n = end - pos < (int64_t)CHUNK ? (size_t)(end - pos) : CHUNK;
			ssize_t got = pread(fd, buf, n, pos);
			if (got < 0) {
				int err = errno;
				if (!range_may_error(f->pieces, f->npieces, pos, pos + (int64_t)n))
					divergence("reading '%s' back at offset %" PRId64 " failed with %s; the model allows data there", name, pos, ename(err));
				pos += (int64_t)n;
				continue;
			}
			if (got == 0)
				break;
			check_data(name, f->pieces, f->npieces, buf, got, pos);
			pos += got;
		}
	}
	free(buf);
	close(fd);
}

/* ------------------------------------------------------------ main */

static int usage(const char *prog)
{
	fprintf(stderr, "usage: %s %s\n       %s --pattern SEED OP ADDR LEN\n", prog, USAGE_OBJS, prog);
	for (int k = 0; k < NOBJ; k++)
		fprintf(stderr, "  %s\n", OBJ_DESCR[k]);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--pattern")) {
		uint32_t seed = (uint32_t)strtoul(argv[2], NULL, 0), opn = (uint32_t)strtoul(argv[3], NULL, 0);
		int64_t addr = strtoll(argv[4], NULL, 0), len = strtoll(argv[5], NULL, 0);
		for (int64_t i = 0; i < len; i++)
			printf("%02x", pattern_byte(seed, opn, addr + i));
		printf("\n");
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '@') {
			const char *eq = strchr(argv[i], '=');
			int k = 0;
			for (; eq && k < NVARS; k++)
				if ((size_t)(eq - argv[i] - 1) == strlen(VAR_NAME[k]) && !strncmp(argv[i] + 1, VAR_NAME[k], (size_t)(eq - argv[i] - 1)))
					break;
			if (!eq || k >= NVARS) {
				fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
				return usage(argv[0]);
			}
			var_value[k] = eq + 1;
			continue;
		}
		const char *eq = strchr(argv[i], '=');
		int k = 0;
		for (; eq && k < NOBJ; k++)
			if ((size_t)(eq - argv[i]) == strlen(OBJ_NAME[k]) && !strncmp(argv[i], OBJ_NAME[k], (size_t)(eq - argv[i])))
				break;
		if (!eq || k >= NOBJ) {
			fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
			return usage(argv[0]);
		}
		obj_path[k] = eq + 1;
	}
	for (int k = 0; k < NOBJ; k++)
		if (!obj_path[k]) {
			fprintf(stderr, "%s: missing %s=PATH\n", argv[0], OBJ_NAME[k]);
			return usage(argv[0]);
		}
	for (int k = 0; k < NVARS; k++)
		if (!var_value[k]) {
			fprintf(stderr, "%s: missing @%s=VALUE\n", argv[0], VAR_NAME[k]);
			return usage(argv[0]);
		}
	struct utsname u;
	if (uname(&u) == 0)
		printf("kernel: %s %s %s\n", u.sysname, u.release, u.version);
	/* The block sizes the kernel picked: which tables apply. */
	variant = -1;
	for (int v = 0; v < NVARIANTS && variant < 0; v++) {
		bool match = true;
		for (int k = 0; k < NGEO; k++) {
			int fd = open(obj_path[GEO_OBJ[k]], O_RDONLY | O_CLOEXEC), lbs = 0;
			if (fd < 0 || ioctl(fd, BLKSSZGET, &lbs) < 0)
				lbs = -1;
			if (fd >= 0)
				close(fd);
			match &= lbs == GEO_LBS[v][k];
		}
		if (match)
			variant = v;
	}
	if (variant < 0) {
		variant = 0;
		tables_on = false;
		snprintf(tables_off_why, sizeof tables_off_why, "the devices have logical block sizes the tables were not made for");
		printf("nothing will be checked: %s\n", tables_off_why);
	}
	for (int k = 0; k < NGEO; k++)
		printf("%s: logical block size %" PRId64 "\n", OBJ_NAME[GEO_OBJ[k]], GEO_LBS[variant][k]);
	struct sigaction sa = { .sa_handler = on_fault, .sa_flags = SA_NODEFER };
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pthread_barrier_init(&barrier, NULL, NTHREADS)) {
		fprintf(stderr, "cannot make the barrier\n");
		return 3;
	}
	pthread_t th[NTHREADS];
	for (int t = 0; t < NTHREADS; t++) {
		tstates[t].id = t;
		if (pthread_create(&th[t], NULL, thread_main, &tstates[t])) {
			fprintf(stderr, "cannot start thread %d\n", t);
			return 3;
		}
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < NTHREADS; t++) {
		for (int k = 0; k < tstates[t].nfds; k++)
			close(tstates[t].fds[k].fd);
		for (int k = 0; k < tstates[t].nmaps; k++) {
			munmap(tstates[t].maps[k].addr, tstates[t].maps[k].len);
			close(tstates[t].maps[k].fd);
		}
		if (tstates[t].ring_ready)
			io_uring_queue_exit(&tstates[t].ring);
	}
	if (FINALS[variant][0].obj >= 0) {
		if (!tables_on)
			printf("final content: not checked (%s)\n", tables_off_why);
		else {
			int e = drop_caches();
			if (e)
				printf("drop caches: %s (final reads may come from the page cache)\n", strerror(e));
			for (int k = 0; FINALS[variant][k].obj >= 0; k++)
				final_check(&FINALS[variant][k]);
		}
	}
	if (divergences) {
		printf("RESULT: %d divergence%s from what the model allows\n", divergences, divergences == 1 ? "" : "s");
		return 1;
	}
	if (!tables_on)
		printf("RESULT: no divergence up to where checking stopped (%s)\n", tables_off_why);
	else
		printf("RESULT: every op did what the model allows\n");
	return 0;
}`;
