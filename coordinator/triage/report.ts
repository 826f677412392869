/**
 * Reports: one folder per signature (<data>/reports/<id>/, beside the
 * store's signature.json), written for a kernel developer:
 *
 *   report.md       title, class, kernels and targets affected (exact kernel
 *                   versions where known), reproduction rate, the minimized
 *                   case one line per op, what the model allowed and what the
 *                   kernel did, the kernel log excerpt, bisection and the
 *                   cross-kernel view when there are some, how to reproduce,
 *                   and a warning that the reproducer may crash the machine
 *   report.json     the same as data
 *   case.json       the original case;  minimized.json  the minimized one
 *   repro.sh        sets the stack up with standard tools, runs repro.c, cleans up
 *   repro.c         the standalone C reproducer (gcc repro.c -luring -lpthread)
 *   console.log     the kernel log or console of the run, when there is one
 *   kernel.config   the kernel's .config, when the caller knows it
 *
 * A case the reproducers cannot express (dm control ops for now) gets the
 * report without repro.sh/repro.c and a note saying why.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type Case, type Divergence, type Layer, type Observation, type Op, validateCase } from '../../model/index.ts';
import { formatTable } from '../cli/table.ts';
import type { BisectResult, VersionVerdict } from './bisect.ts';
import { writeFileAtomic, writeJsonAtomic } from './files.ts';
import type { MinimizeResult } from './minimize.ts';
import { ReproUnsupported, generateReproC } from './repro-c.ts';
import { generateReproSh } from './repro-sh.ts';
import { type Finding, allSignatures, submissionPath } from './signature.ts';
import type { SignatureRecord } from './store.ts';

export interface ReportInput {
  record: SignatureRecord;
  original: Case;
  minimized?: Case;
  minimize?: MinimizeResult;
  /** A run that shows the finding (of the minimized case when there is one). */
  outcome?: Finding;
  /** Kernel log or console text of such a run. */
  kernelLog?: string;
  /** What the target observed in that run (results, geometry): the reproducer's tables follow its path. */
  observation?: Observation;
  /** The kernel's .config, when known (written as kernel.config). */
  kernelConfig?: string;
  crossKernel?: VersionVerdict[];
  bisect?: BisectResult;
  /** For the header: when it was written (ms since the epoch). */
  at?: number;
}

export interface ReportFiles {
  dir: string;
  files: string[];
  /** Why there are no standalone reproducers, if there are none. */
  reproUnsupported?: string;
}

const MiB = 1024 * 1024;

function bytes(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** One line per layer, bottom-up as given. */
export function layerLine(l: Layer): string {
  const on = (() => {
    const r = l as unknown as Record<string, unknown>;
    const refs = ['on', 'origin', 'cow'].filter((k) => typeof r[k] === 'string').map((k) => `${k === 'on' ? 'on' : k} ${r[k] as string}`);
    if (Array.isArray(r.members)) refs.push(`members ${(r.members as string[]).join(', ')}`);
    return refs.length ? ` ${refs.join(', ')}` : '';
  })();
  const rest = Object.entries(l)
    .filter(([k]) => !['id', 'kind', 'on', 'origin', 'cow', 'members'].includes(k))
    .map(([k, v]) => `${k}=${typeof v === 'number' && /size|offset|length|Limit/i.test(k) && v >= 4096 ? bytes(v) : JSON.stringify(v)}`)
    .join(' ');
  return `${l.id}  ${l.kind}${on}${rest ? `  ${rest}` : ''}`;
}

function opDetail(op: Op): string {
  switch (op.kind) {
    case 'read':
    case 'write': {
      const b = op.buffer;
      const extra = [op.vectors > 1 ? `${op.vectors} iovecs` : '', b.placement !== 'heap' ? `${b.placement} buffer${b.placement === 'anon' ? ` (${b.touchedPages} pages touched)` : b.placement === 'mmap' ? ` of ${b.file}@${b.offset}` : ''}` : '', b.align ? `buffer +${b.align}` : '', op.kind === 'write' && op.dsync ? 'dsync' : ''].filter(Boolean);
      return extra.join(', ');
    }
    case 'fallocate':
    case 'discard':
    case 'remount':
    case 'msync':
      return op.mode;
    case 'truncate':
      return `to ${op.size}`;
    case 'loop-set-block-size':
      return `${op.size}`;
    case 'loop-set-direct-io':
      return op.on ? 'on' : 'off';
    case 'sync-file-range':
      return op.flags;
    case 'barrier':
      return op.name;
    case 'sleep':
      return `${op.ms} ms`;
    case 'md-fail':
      return `member ${op.member}`;
    case 'dm-reload':
      return op.as;
    case 'fsync':
      return op.dataOnly ? 'fdatasync' : '';
    default:
      return '';
  }
}

/** The program, one line per op: thread, op id, op, target, offset, length, path, details. */
export function programTable(c: Case): string {
  const rows: string[][] = [];
  c.program.threads.forEach((t, ti) => {
    for (const op of t.ops) {
      const r = op as unknown as Record<string, unknown>;
      rows.push([
        String(ti),
        String(op.id),
        op.kind,
        'target' in op ? op.target : '-',
        typeof r.offset === 'number' ? String(r.offset) : '-',
        typeof r.length === 'number' ? String(r.length) : '-',
        submissionPath(op),
        opDetail(op),
      ]);
    }
  });
  return formatTable(['thread', 'op', 'kind', 'target', 'offset', 'length', 'path', 'details'], rows);
}

export function caseText(c: Case): string {
  return ['stack (bottom-up):', ...c.stack.layers.map((l) => `  ${layerLine(l)}`), '', `program (seed ${c.seed}, ${c.program.threads.length} thread${c.program.threads.length === 1 ? '' : 's'}):`, programTable(c)].join('\n');
}

function divergenceText(d: Divergence): string[] {
  const where = [d.op !== undefined ? `op ${d.op}${d.opKind ? ` (${d.opKind}${d.thread !== undefined ? `, thread ${d.thread}` : ''})` : ''}` : '', d.object ? `on '${d.object}'` : '', d.offset !== undefined ? `at offset ${d.offset}` : ''].filter(Boolean).join(' ');
  const lines = [`- **${d.dataClass ? `${d.class}/${d.dataClass}` : d.class}**${where ? ` ${where}` : ''}: ${d.message}`, `  - the model allowed: ${d.expected}`, `  - the kernel did: ${d.observed}`];
  if (d.expectedWriters?.length) lines.push(`  - the bytes there belonged to op${d.expectedWriters.length > 1 ? 's' : ''} ${d.expectedWriters.join(', ')}${d.observedWriter !== undefined ? `; they came from op ${d.observedWriter}` : ''}`);
  return lines;
}

function kernelLines(r: SignatureRecord): string[] {
  return Object.entries(r.kernels)
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([k, s]) => `${k}${r.kernelVersions[k] ? ` (${r.kernelVersions[k]})` : ''}: seen ${s.count} time${s.count === 1 ? '' : 's'}, last ${iso(s.last)}`);
}

function rateText(rep: { runs: number; reproduced: number }): string {
  return `${rep.reproduced} of ${rep.runs} runs (${rep.runs ? Math.round((100 * rep.reproduced) / rep.runs) : 0}%)`;
}

function sizeText(s: { ops: number; threads: number; layers: number }): string {
  return `${s.ops} ops, ${s.threads} thread${s.threads === 1 ? '' : 's'}, ${s.layers} layer${s.layers === 1 ? '' : 's'}`;
}

const WARNING =
  '> **Warning.** The reproducers below drive the kernel into the state where it misbehaved. They can corrupt the devices ' +
  'they are given, hang, or crash the machine they run on. Run them as root in a VM or on a scratch machine.';

export function reportMarkdown(input: ReportInput, reproUnsupported?: string): string {
  const r = input.record;
  const c = input.minimized ?? input.original;
  const out: string[] = [`# ${r.title}`, '', WARNING, ''];
  const p = r.parts;
  const what =
    p.source === 'kernel'
      ? `kernel report (${p.reportKind ?? 'unknown'}): \`${p.kernelTitle ?? r.title}\`${p.guilty ? `, in \`${p.guilty}\`` : ''}`
      : `${p.class}${p.dataClass ? `/${p.dataClass}` : ''}${p.errno ? ` (${p.errno})` : ''}; op \`${p.op}\` via \`${p.path}\` on \`${p.top}\`${p.fs && p.fs !== '-' ? ` (${p.fs})` : ''}`;
  out.push(
    `- **Signature:** \`${r.id}\``,
    `- **Class:** ${what}`,
    `- **Status:** ${r.status}${r.fixedIn ? ` (fixed in ${r.fixedIn})` : ''}${r.statusNote ? ` — ${r.statusNote}` : ''}`,
    `- **Seen:** ${r.count} time${r.count === 1 ? '' : 's'}, first ${iso(r.firstSeen)}, last ${iso(r.lastSeen)}`,
    `- **Kernels:** ${kernelLines(r).join('; ') || 'none recorded'}`,
    `- **Targets:** ${Object.entries(r.targets).map(([t, s]) => `${t} (${s.count})`).join(', ') || 'none recorded'}`,
  );
  if (r.reproduction) out.push(`- **Reproduction:** the ${r.reproduction.case} case shows it in ${rateText(r.reproduction)} on ${r.reproduction.target}`);
  const m = input.minimize;
  if (m) {
    const first = m.stages[0]?.before;
    const last = m.stages[m.stages.length - 1]?.after;
    out.push(`- **Minimized:** ${first ? sizeText(first) : '?'} → ${last ? sizeText(last) : '?'} in ${m.executions} executions (${(m.elapsedMs / 1000).toFixed(1)} s${m.budgetExhausted ? ', budget exhausted: not fully minimal' : ''}); original ${rateText(m.originalRate)}, minimized ${rateText(m.finalRate)}; candidates needed ${m.policy.need} of ${m.policy.runs} runs`);
    if (m.minimizedSignature && m.minimizedSignature.id !== r.id) out.push(`- **The minimized case shows it as:** ${m.minimizedSignature.title} (\`${m.minimizedSignature.id}\`): the path or stack of the original is not needed`);
  }
  if (r.aliases.length) out.push(`- **Also filed as:** ${r.aliases.map((a) => `\`${a}\``).join(', ')}`);
  out.push('');

  if (input.bisect) {
    const b = input.bisect;
    out.push('## Bisection', '', `${b.message}. Confidence ${(100 * b.confidence).toFixed(1)}% (rate ${(100 * b.rate).toFixed(0)}% per run, ${b.executions} runs).`, '');
    out.push('```text', formatTable(['kernel', 'runs', 'showed it', 'infra errors', 'verdict'], b.tested.map((v) => [v.kernel, String(v.runs), String(v.reproduced), String(v.infraErrors), v.verdict])), '```', '');
  }
  if (input.crossKernel?.length) {
    out.push('## On every kernel', '', '```text', formatTable(['kernel', 'runs', 'showed it', 'infra errors', 'verdict'], input.crossKernel.map((v) => [v.kernel, String(v.runs), String(v.reproduced), String(v.infraErrors), v.verdict])), '```', '');
  }

  out.push('## What the model allowed and what the kernel did', '');
  const o = input.outcome;
  if (!o) out.push('No run of the case is on record with this report.');
  else if (o.kind === 'divergence') {
    for (const d of o.divergences.slice(0, 12)) out.push(...divergenceText(d));
    if (o.divergences.length > 12) out.push(`- ... and ${o.divergences.length - 12} more`);
    const others = allSignatures(o, c).slice(1);
    if (others.length) out.push('', `Other signatures in the same run: ${others.map((s) => `${s.title} (\`${s.id}\`)`).join('; ')}.`);
    if (o.notes.length) out.push('', 'Notes from the oracle:', ...o.notes.slice(0, 10).map((n) => `- ${n}`));
  } else out.push(`The kernel ${o.kind === 'crash' ? 'crashed' : 'hung'}: \`${o.title}\` (on ${o.target}).`);
  out.push('');

  out.push(`## The ${input.minimized ? 'minimized ' : ''}case`, '', '```text', caseText(c), '```', '');
  out.push(
    'Every write carries a pattern that is a function of (seed, op id, byte address), so every byte read back names the op that wrote it; "op N\'s data" above means those bytes.',
    '',
  );

  const log = input.kernelLog ?? (o && o.kind !== 'divergence' ? o.log : undefined);
  if (log) {
    const lines = log.split('\n');
    out.push('## Kernel log', '', '```text', ...lines.slice(0, 120), ...(lines.length > 120 ? [`... (${lines.length - 120} more lines in console.log)`] : []), '```', '');
  }

  out.push('## Reproduce', '');
  if (reproUnsupported) out.push(`No standalone reproducer: ${reproUnsupported}.`, '');
  else
    out.push(
      'Standalone (no blockfarm needed; gcc, liburing-dev and the usual block tools):',
      '',
      '```sh',
      'sudo ./repro.sh        # builds repro.c, sets the stack up on loop devices, runs it, tears it down',
      '```',
      '',
      '`repro.c` alone: `gcc -O2 -o repro repro.c -luring -lpthread`, then `./repro` with the device and file paths it asks for. It prints what the model allowed and what the kernel did for every op, and exits 1 on a divergence.',
      '',
      `Its tables follow one path through the program${input.observation ? ' (the one the kernel took in the run above)' : " (the model's own predictions)"}: where the kernel takes another allowed path (a race resolved the other way), it stops checking and says so; \`blockfarm run\` judges such runs completely.`,
      '',
    );
  out.push(
    'With blockfarm:',
    '',
    '```sh',
    `blockfarm run ${input.minimized ? 'minimized.json' : 'case.json'} --target host --allow-host`,
    `blockfarm repro ${r.id} --target qemu:<kernel>`,
    '```',
    '',
    '## Files',
    '',
    '- `case.json`: the case as found; `minimized.json`: the minimized case',
    ...(reproUnsupported ? [] : ['- `repro.sh`, `repro.c`: standalone reproducers']),
    ...(log ? ['- `console.log`: the kernel log of the run'] : []),
    ...(input.kernelConfig ? ['- `kernel.config`: the configuration of the kernel it was found on'] : []),
    '- `report.json`: this report as data; `signature.json`: the signature record',
    '',
  );
  return out.join('\n');
}

function reproHeader(input: ReportInput): string[] {
  const r = input.record;
  const kernels = Object.keys(r.kernels).map((k) => `${k}${r.kernelVersions[k] ? ` (${r.kernelVersions[k]})` : ''}`);
  return [
    `blockfarm reproducer: ${r.title}`,
    `signature ${r.id}`,
    `seen on: ${kernels.join(', ') || 'unknown'}`,
    `case: ${(input.minimized ?? input.original).name}; generated ${iso(input.at ?? Date.now())}`,
  ];
}

/**
 * The run's results to steer repro.c's tables by: those the oracle allowed.
 * A divergent op's result is left to the model's prediction, so that a
 * kernel answering as the model allows there is checked on to the end
 * rather than taken for another path.
 */
function steeringObservation(obs: Observation | undefined, outcome: Finding | undefined): Observation | undefined {
  if (!obs || outcome?.kind !== 'divergence') return obs;
  const bad = new Set(outcome.divergences.map((d) => d.op).filter((x): x is number => x !== undefined));
  return bad.size ? { ...obs, results: obs.results.filter((r) => !bad.has(r.op)) } : obs;
}

/** Write the report folder `dir` (the store's folder for the signature). */
export async function writeReport(dir: string, input: ReportInput): Promise<ReportFiles> {
  const files: string[] = [];
  const put = async (name: string, content: string, mode?: number) => {
    await writeFileAtomic(join(dir, name), content, mode);
    files.push(name);
  };
  await writeJsonAtomic(join(dir, 'case.json'), input.original);
  files.push('case.json');
  if (input.minimized) {
    await writeJsonAtomic(join(dir, 'minimized.json'), input.minimized);
    files.push('minimized.json');
  }
  let reproUnsupported: string | undefined;
  const c = input.minimized ?? input.original;
  const v = validateCase(c);
  if (!v.ok) reproUnsupported = `the case is not valid (${v.issues[0]?.message ?? '?'})`;
  else {
    try {
      const header = reproHeader(input);
      const observation = steeringObservation(input.observation, input.outcome);
      const reproC = generateReproC(v.value, v.info, { header, ...(observation ? { observation } : {}) });
      const reproSh = generateReproSh(v.value, v.info, { header });
      await put('repro.c', reproC);
      await put('repro.sh', reproSh, 0o755);
      await fsp.chmod(join(dir, 'repro.sh'), 0o755);
    } catch (err) {
      if (!(err instanceof ReproUnsupported)) throw err;
      reproUnsupported = err.message;
      for (const f of ['repro.c', 'repro.sh']) await fsp.rm(join(dir, f), { force: true });
    }
  }
  const log = input.kernelLog ?? (input.outcome && input.outcome.kind !== 'divergence' ? input.outcome.log : undefined);
  if (log) await put('console.log', log.endsWith('\n') ? log : `${log}\n`);
  if (input.kernelConfig) await put('kernel.config', input.kernelConfig);
  await put('report.md', reportMarkdown(input, reproUnsupported));
  const json = {
    format: 'blockfarm-report/1',
    signature: input.record,
    writtenAt: input.at ?? Date.now(),
    outcome: input.outcome,
    minimize: input.minimize
      ? {
          executions: input.minimize.executions,
          elapsedMs: input.minimize.elapsedMs,
          stages: input.minimize.stages,
          policy: input.minimize.policy,
          originalRate: input.minimize.originalRate,
          finalRate: input.minimize.finalRate,
          budgetExhausted: input.minimize.budgetExhausted,
          minimizedSignature: input.minimize.minimizedSignature,
        }
      : undefined,
    crossKernel: input.crossKernel,
    bisect: input.bisect,
    reproUnsupported,
    files: [...files, 'report.json'],
  };
  await put('report.json', `${JSON.stringify(json, null, 2)}\n`);
  return { dir, files, ...(reproUnsupported ? { reproUnsupported } : {}) };
}
