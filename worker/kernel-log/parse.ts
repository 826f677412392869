/**
 * The kernel-log oracle's engine: turns kernel output (/dev/kmsg records, a
 * serial console, dmesg, syslog, or bare lines, mixed freely) into titled
 * reports, driven entirely by the table in formats.ts.
 *
 * Input lines:
 * - /dev/kmsg: `6,1234,5678901,-;message` (also `...,-,caller=T12;message`);
 *   `\xNN` escapes are decoded, so an embedded newline splits the record into
 *   several lines; the dictionary lines that follow a record (` DEVICE=b7:0`)
 *   are dropped.
 * - console/dmesg: `[   12.345678] message`, with an optional `<4>` level,
 *   `[ T1234]`/`[ C1]` caller id, `dmesg -T` date, or a syslog
 *   `Mon DD HH:MM:SS host kernel: ` prefix; ANSI escapes and `\r` go.
 * - anything else is taken as a bare message.
 *
 * A report runs from its header (plus a lead-in separator just before it) to
 * its end: the format's end marker, its stack trace's end (`</TASK>` or the
 * first non-trace line after `Call Trace:`) followed only by tail lines
 * (registers, `---[ end trace ...`, an absorbed panic), the next header it
 * does not absorb, a blank-line gap, or its length limit. `? ` frames are
 * unreliable and never blamed.
 */
import {
  BURST_GAP,
  COMMON_SKIP,
  DEFAULT_MAX_LINES,
  DUMP_PREAMBLE,
  FORMATS,
  GENERIC_TAIL,
  LEAD_IN,
  type GuiltySource,
  type ReportFormat,
  type ReportKind,
} from './formats.ts';

export { FORMATS, REPORT_KINDS, type ReportFormat, type ReportKind } from './formats.ts';

export interface KernelReport {
  kind: ReportKind;
  /** Id of the table entry that matched the header. */
  format: string;
  /** Scrubbed title: equal bugs get equal titles. */
  title: string;
  /** Other titles the same bug may be known by (the other lock of a deadlock, where a KASAN object was allocated and freed). */
  altTitles: string[];
  /** The function blamed, if the format names one and one was found. */
  guilty?: string;
  /** The kernel killed a task or stopped: the case ends as a crash. */
  crash: boolean;
  /** 1-based line number of the header in the input. */
  line: number;
  /** 1-based input line numbers of the report's first and last lines. */
  firstLine: number;
  lastLine: number;
  /** The report's messages, prefixes stripped. */
  lines: string[];
  /** The input lines firstLine..lastLine as given. */
  raw: string[];
}

export interface ParseOptions {
  /** The format table (default: FORMATS). */
  formats?: readonly ReportFormat[];
  /** Do not strip prefixes: every line is a bare message. */
  plain?: boolean;
}

/** One message of the log. */
export interface LogLine {
  /** 1-based input line number. */
  n: number;
  msg: string;
}

// ---------------------------------------------------------------- input lines

const KMSG = /^(\d+),(\d+),(\d+),[^;]*;(.*)$/;
const KMSG_DICT = /^ [A-Z0-9_]+=/;
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const SYSLOG = /^(?:<\d+>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?) \S+ kernel: ?/;
const LEVEL = /^<\d+>/;
const STAMP = /^\[\s*(?:\d+\.\d+|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]/;
const CALLER = /^\[\s*[TC]\d+\]/;

/** The message of one console/dmesg/syslog line, its prefixes removed. */
export function stripPrefix(line: string): string {
  let s = line.replace(ANSI, '').replace(/\r/g, '');
  let bracket = false;
  const sys = SYSLOG.exec(s);
  if (sys) s = s.slice(sys[0].length);
  const lvl = LEVEL.exec(s);
  if (lvl) s = s.slice(lvl[0].length);
  const ts = STAMP.exec(s);
  if (ts) { s = s.slice(ts[0].length); bracket = true; }
  const caller = CALLER.exec(s);
  if (caller) { s = s.slice(caller[0].length); bracket = true; }
  if (bracket && s.startsWith(' ')) s = s.slice(1);
  return s;
}

function unescapeKmsg(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Split a log into messages, whatever mix of formats it is in. */
export function logLines(input: string | readonly string[], opts: ParseOptions = {}): LogLine[] {
  const lines = typeof input === 'string' ? input.split('\n') : input.flatMap((l) => l.split('\n'));
  if (typeof input === 'string' && lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const out: LogLine[] = [];
  let afterKmsg = false;
  lines.forEach((line, i) => {
    const n = i + 1;
    if (opts.plain) { out.push({ n, msg: line.replace(/\r$/, '') }); return; }
    const clean = line.replace(/\r/g, '');
    if (afterKmsg && KMSG_DICT.test(clean)) return;
    const k = KMSG.exec(clean);
    if (k) {
      afterKmsg = true;
      for (const part of unescapeKmsg(k[4] ?? '').split('\n')) out.push({ n, msg: part.replace(ANSI, '') });
      return;
    }
    afterKmsg = false;
    out.push({ n, msg: stripPrefix(line) });
  });
  return out;
}

// ---------------------------------------------------------------- frames

export interface Frame {
  func: string;
  /** A `? ` frame: found on the stack, not proven to be part of the call chain. */
  unreliable: boolean;
  module?: string;
}

const FRAME =
  /^\s*(?:\[<[0-9a-f]+>\]\s*)?(\?\s+)?([A-Za-z_$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[([\w-]+)(?:\s+[0-9a-f]+)?\])?(?:\s+\S+:\d+(?::\d+)?)?(?:\s+\[inline\])?\s*$/;
const INLINE_FRAME = /^\s*([A-Za-z_][\w.]*) \S+:\d+(?::\d+)? \[inline\]\s*$/;
const RAW_FRAME = /^\s*(?:\?\s+)?(?:\[<[0-9a-f]+>\]\s*)?0x[0-9a-f]+\s*$/;
const MARKER = /^\s*<\/?(?:TASK|IRQ|NMI|SOFTIRQ|EOI)>\s*$/;
const REGISTER =
  /^\s*(?:(?:RIP|RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R\d{1,2}|FS|GS|CS|DS|ES|CR[0-4]|DR[0-7]|PKRU|EFLAGS|ORIG_RAX|EIP|ESP|EAX|EBX|ECX|EDX|ESI|EDI|EBP)\s*:|(?:pc|lr|sp|pstate|x\d{1,2})\s*:|Code: |Call [Tt]race:)/;
const CALL_TRACE = /^\s*Call [Tt]race:/;
const TASK_END = /^\s*<\/TASK>\s*$/;
const END_TRACE = /^---\[ end trace/;
const RIP = /^\s*(?:RIP: (?:0010:)?(?:\[<[0-9a-f]+>\]\s*)*|pc : )([A-Za-z_][\w.]*)\+0x/;

/** A bare function name: offsets, module and compiler suffixes (.cold, .isra.0, .constprop.0, .part.0) removed. */
export function normalizeFunction(name: string): string {
  const noOffset = name.replace(/\+0x[0-9a-f]+(?:\/0x[0-9a-f]+)?.*$/, '');
  const dot = noOffset.indexOf('.');
  return dot > 0 ? noOffset.slice(0, dot) : noOffset;
}

/** Parse one stack frame line (`func+0x1a/0x2b [module]`, `? func+...`, `[<addr>] func+...`, `func file:line [inline]`). */
export function parseFrame(msg: string): Frame | undefined {
  const m = FRAME.exec(msg);
  if (m) {
    const f: Frame = { func: normalizeFunction(m[2] ?? ''), unreliable: m[1] !== undefined };
    if (m[3] !== undefined) f.module = m[3];
    return f;
  }
  const i = INLINE_FRAME.exec(msg);
  if (i) return { func: normalizeFunction(i[1] ?? ''), unreliable: false };
  return undefined;
}

/** A line that belongs inside a stack trace: a frame, a <TASK>-style marker, a register dump line. */
export function isTraceLine(msg: string): boolean {
  return parseFrame(msg) !== undefined || RAW_FRAME.test(msg) || MARKER.test(msg) || REGISTER.test(msg);
}

const globCache = new Map<string, RegExp>();
function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (!re) {
    re = new RegExp('^' + glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
    globCache.set(glob, re);
  }
  return re;
}

/** Whether a function is on a skip list (globs). */
export function isSkipped(func: string, skip: readonly string[]): boolean {
  return skip.some((g) => globToRegExp(g).test(func));
}

// ---------------------------------------------------------------- scrubbing

/** Device names whose instance number varies from run to run. */
const DEVICES: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bloop\d+(?:p\d+)?\b/g, 'loopN'],
  [/\bdm-\d+\b/g, 'dm-N'],
  [/\bmd\d+(?:p\d+)?\b/g, 'mdN'],
  [/\bnbd\d+(?:p\d+)?\b/g, 'nbdN'],
  [/\bnvme\d+n\d+(?:p\d+)?\b/g, 'nvmeNnN'],
  [/\bnvme\d+\b/g, 'nvmeN'],
  [/\bmmcblk\d+(?:p\d+)?\b/g, 'mmcblkN'],
  [/\b(z?ram|pmem|sr|ubd|rbd|drbd)\d+\b/g, '$1N'],
  [/\b(x?[shv]d)[a-z]{1,3}\d*\b/g, '$1X'],
];

/**
 * Make a title part stable: drop `+0x../0x..` offsets, name devices without
 * their instance (loopN, dm-N, sdX), replace addresses by ADDR and other
 * numbers (pids, sectors, CPUs, line numbers) by NUM.
 */
export function scrubTitle(s: string): string {
  let t = s.replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[[\w-]+(?:\s+[0-9a-f]+)?\])?/gi, '');
  for (const [re, to] of DEVICES) t = t.replace(re, to);
  t = t.replace(/\b0x([0-9a-f]+)\b/gi, (_, h: string) => (h.length >= 6 ? 'ADDR' : 'NUM'));
  t = t.replace(/(?<![\w])[0-9a-f]{8,}(?![\w])/gi, (h) => (/[a-f]/i.test(h) || h.length >= 16 ? 'ADDR' : h));
  t = t.replace(/(?<![A-Za-z_\d])\d+(?![A-Za-z_\d])/g, 'NUM');
  return t.replace(/\s+/g, ' ').trim();
}

type Vars = Record<string, string | undefined>;

/** Fill a title template: `{name}` variables, `[...]` optional segments. */
export function fillTemplate(template: string, vars: Vars): string {
  const put = (s: string) => s.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? '?');
  const withOptional = template.replace(/\[([^[\]]*)\]/g, (_, seg: string) => {
    const names = [...seg.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '');
    return names.every((k) => vars[k] !== undefined && vars[k] !== '') ? put(seg) : '';
  });
  return put(withOptional).replace(/\s+/g, ' ').trim();
}

// ---------------------------------------------------------------- the engine

interface Draft {
  fmt: ReportFormat;
  /** Indices into the LogLine array. */
  first: number;
  header: number;
  last: number;
  state: 'body' | 'trace' | 'tail';
  blanks: number;
  crash: boolean;
  closeOnTrace: boolean;
  headerVars: Vars;
  /** The title computed from the header alone (burst formats). */
  burstTitle?: string;
}

interface HeaderMatch {
  fmt: ReportFormat;
  vars: Vars;
}

function matchHeader(formats: readonly ReportFormat[], msg: string): HeaderMatch | undefined {
  const text = msg.trimEnd();
  if (text === '' || /^\s/.test(text)) return undefined;
  for (const fmt of formats) {
    const m = fmt.header.exec(text);
    if (m) return { fmt, vars: { ...(m.groups ?? {}) } };
  }
  return undefined;
}

/** The title of a burst format from its header alone, or undefined if it needs more. */
function headerTitle(fmt: ReportFormat, vars: Vars): string | undefined {
  if (!fmt.burst) return undefined;
  const sources = fmt.guilty ?? [];
  if (sources.some((s) => s.from !== 'header')) return undefined;
  const skip = [...COMMON_SKIP, ...(fmt.skip ?? [])];
  const func = vars.func !== undefined ? normalizeFunction(vars.func) : undefined;
  const ok = sources.length > 0 && func !== undefined && !isSkipped(func, skip) ? func : undefined;
  return fillTemplate(fmt.title, { ...scrubVars(vars), func: ok });
}

function scrubVars(vars: Vars): Vars {
  const out: Vars = {};
  for (const [k, v] of Object.entries(vars)) if (k !== 'func' && v !== undefined) out[k] = scrubTitle(v);
  return out;
}

/** Lines allowed after the trace: generic tail lines, the format's tail, and (message shape) its body lines. */
function isTail(fmt: ReportFormat, msg: string): boolean {
  return (
    GENERIC_TAIL.some((re) => re.test(msg)) ||
    REGISTER.test(msg) ||
    (fmt.tail ?? []).some((re) => re.test(msg)) ||
    (fmt.shape === 'message' && (fmt.body ?? []).some((re) => re.test(msg)))
  );
}

/** Find the guilty function in a report's lines (header at index h). */
function findGuilty(sources: readonly GuiltySource[], msgs: readonly string[], h: number, vars: Vars, skip: readonly string[]): string | undefined {
  const usable = (f: string | undefined) => (f !== undefined && f !== '' && !isSkipped(f, skip) ? f : undefined);
  for (const src of sources) {
    let found: string | undefined;
    switch (src.from) {
      case 'header':
        found = usable(vars.func !== undefined ? normalizeFunction(vars.func) : undefined);
        break;
      case 'rip':
        for (let i = h + 1; i < msgs.length && found === undefined; i++) {
          const m = RIP.exec(msgs[i] ?? '');
          if (m) { found = usable(normalizeFunction(m[1] ?? '')); if (found === undefined) break; }
        }
        break;
      case 'line': {
        let i = h + 1;
        if (src.after) {
          while (i < msgs.length && !src.after.test(msgs[i] ?? '')) i++;
          i++;
        }
        for (; i < msgs.length; i++) {
          const m = src.re.exec(msgs[i] ?? '');
          if (m) { found = usable(normalizeFunction(m.groups?.func ?? '')); break; }
        }
        break;
      }
      case 'stack':
        found = stackFunction(src, msgs, h, skip);
        break;
    }
    if (found !== undefined) return found;
  }
  return undefined;
}

function stackFunction(src: { after?: RegExp; until?: RegExp }, msgs: readonly string[], h: number, skip: readonly string[]): string | undefined {
  const after = src.after ?? CALL_TRACE;
  let i = h + 1;
  while (i < msgs.length && !after.test(msgs[i] ?? '')) i++;
  let seen = false;
  for (i++; i < msgs.length; i++) {
    const msg = msgs[i] ?? '';
    if (src.until?.test(msg)) break;
    const f = parseFrame(msg);
    if (f) {
      seen = true;
      if (!f.unreliable && !isSkipped(f.func, skip)) return f.func;
      continue;
    }
    if (RAW_FRAME.test(msg) || MARKER.test(msg) || REGISTER.test(msg)) continue;
    if (seen) break;
  }
  return undefined;
}

function finish(d: Draft, lines: readonly LogLine[], rawLines: readonly string[]): KernelReport {
  const slice = lines.slice(d.first, d.last + 1);
  const msgs = slice.map((l) => l.msg);
  const h = d.header - d.first;
  const fmt = d.fmt;
  const skip = [...COMMON_SKIP, ...(fmt.skip ?? [])];
  const vars: Vars = { ...d.headerVars };
  for (const re of fmt.captures ?? []) {
    for (let i = h + 1; i < msgs.length; i++) {
      const m = re.exec(msgs[i] ?? '');
      if (m) { Object.assign(vars, m.groups ?? {}); break; }
    }
  }
  const rule = fmt.classify?.find((r) => msgs.slice(h + 1).some((m) => r.re.test(m)));
  if (rule) Object.assign(vars, rule.vars);
  const guilty = fmt.guilty ? findGuilty(fmt.guilty, msgs, h, vars, skip) : undefined;
  const scrubbed = scrubVars(vars);
  const title = fillTemplate(fmt.title, { ...scrubbed, func: guilty });
  const altTitles: string[] = [];
  for (const alt of fmt.alts ?? []) {
    const f = findGuilty(alt.guilty, msgs, h, vars, skip);
    if (f === undefined) continue;
    const t = fillTemplate(alt.title, { ...scrubbed, func: f });
    if (t !== title && !altTitles.includes(t)) altTitles.push(t);
  }
  const first = slice[0]?.n ?? 1;
  const last = slice[slice.length - 1]?.n ?? first;
  const report: KernelReport = {
    kind: fmt.kind,
    format: fmt.id,
    title,
    altTitles,
    crash: d.crash,
    line: lines[d.header]?.n ?? first,
    firstLine: first,
    lastLine: last,
    lines: msgs,
    raw: rawLines.slice(first - 1, last),
  };
  if (guilty !== undefined) report.guilty = guilty;
  return report;
}

/**
 * Parse kernel output into reports, in the order their headers appear.
 * Accepts the whole text or an array of lines.
 */
export function parseKernelLog(input: string | readonly string[], opts: ParseOptions = {}): KernelReport[] {
  const formats = opts.formats ?? FORMATS;
  const lines = logLines(input, opts);
  const rawLines = typeof input === 'string' ? input.split('\n') : input.flatMap((l) => l.split('\n'));
  const drafts: Draft[] = [];
  /** Index of the last line that belongs to a report (lead-in lines are not shared). */
  let consumed = -1;
  let open: Draft | undefined;

  const close = () => {
    if (!open) return;
    // Trailing blank lines are not part of the report.
    while (open.last > open.header && (lines[open.last]?.msg.trim() ?? '') === '') open.last--;
    consumed = Math.max(consumed, open.last);
    drafts.push(open);
    open = undefined;
  };

  const start = (i: number, hm: HeaderMatch) => {
    const fmt = hm.fmt;
    const bt = headerTitle(fmt, hm.vars);
    const prev = drafts[drafts.length - 1];
    if (fmt.burst && bt !== undefined && prev && prev.fmt.kind === fmt.kind && prev.burstTitle === bt && i - prev.last <= BURST_GAP + 1) {
      drafts.pop();
      prev.last = i;
      prev.state = 'body';
      prev.blanks = 0;
      open = prev;
      return;
    }
    const leadIn = fmt.leadIn ?? LEAD_IN;
    const before = i - 1;
    const first = before > consumed && leadIn.test((lines[before]?.msg ?? '').trim()) ? before : i;
    open = {
      fmt,
      first,
      header: i,
      last: i,
      state: 'body',
      blanks: 0,
      crash: fmt.crash,
      closeOnTrace: fmt.end === undefined,
      headerVars: hm.vars,
    };
    if (bt !== undefined) open.burstTitle = bt;
  };

  for (let i = 0; i < lines.length; i++) {
    const msg = lines[i]?.msg ?? '';
    const hm = matchHeader(formats, msg);
    if (open) {
      const d: Draft = open;
      if (hm) {
        if (d.fmt.absorbs?.includes(hm.fmt.kind)) {
          d.last = i;
          d.crash ||= hm.fmt.crash;
          d.state = 'body';
          d.blanks = 0;
          d.closeOnTrace = true;
          continue;
        }
        if (hm.fmt.burst && d.burstTitle !== undefined && hm.fmt.kind === d.fmt.kind && headerTitle(hm.fmt, hm.vars) === d.burstTitle) {
          d.last = i;
          d.state = 'body';
          d.blanks = 0;
          continue;
        }
        close();
      } else if (step(d, i, msg)) {
        continue;
      } else {
        close();
        continue;
      }
    }
    if (hm) start(i, hm);
  }
  close();
  return drafts.map((d) => finish(d, lines, rawLines));

  /** Feed one non-header line to the open report; false: the report ended before this line. */
  function step(d: Draft, i: number, msg: string): boolean {
    const fmt = d.fmt;
    if (i - d.first >= (fmt.maxLines ?? DEFAULT_MAX_LINES)) return false;
    const blank = msg.trim() === '';
    if (d.state === 'tail') {
      if (blank || !isTail(fmt, msg)) return false;
      d.last = i;
      return true;
    }
    if (blank) {
      d.blanks++;
      return d.blanks <= (fmt.maxBlank ?? 0);
    }
    d.blanks = 0;
    if (fmt.end?.test(msg.trim()) && i > d.header) {
      d.last = i;
      d.state = 'tail';
      d.closeOnTrace = true;
      return true;
    }
    if (d.state === 'trace') {
      if (isTraceLine(msg)) {
        d.last = i;
        if (TASK_END.test(msg) && d.closeOnTrace) d.state = 'tail';
        return true;
      }
      if (d.closeOnTrace) {
        d.state = 'tail';
        return step(d, i, msg);
      }
      d.state = 'body';
    }
    // body
    if (END_TRACE.test(msg) && d.closeOnTrace) {
      d.last = i;
      d.state = 'tail';
      return true;
    }
    if (CALL_TRACE.test(msg)) {
      d.last = i;
      d.state = 'trace';
      return true;
    }
    if (fmt.shape === 'message' && !(fmt.body ?? []).some((re) => re.test(msg)) && !DUMP_PREAMBLE.some((re) => re.test(msg))) {
      return false;
    }
    d.last = i;
    return true;
  }
}

/** The first report that ended the case as a crash (what a dead VM is filed under). */
export function firstCrash(reports: readonly KernelReport[]): KernelReport | undefined {
  return reports.find((r) => r.crash);
}

/** Parse a console or kmsg capture and return its first crash, if any. */
export function consoleToCrash(input: string | readonly string[], opts?: ParseOptions): KernelReport | undefined {
  return firstCrash(parseKernelLog(input, opts));
}

/** The report as text, for crash reports and logs. */
export function reportText(r: KernelReport): string {
  return r.lines.join('\n');
}
