/**
 * How a campaign shows itself: a progress bar on a terminal (stderr), log
 * lines otherwise, and the summary table at the end (stdout).
 *
 * On a terminal the bar owns the last line of stderr; logs written through
 * `barAwareLogger` clear it, print, and let the next tick redraw it.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import { type Logger, type LogLevel, resolveLogLevel } from '../../infra/log.ts';
import { formatTable } from '../cli/table.ts';
import type { CampaignSummary, ProgressSnapshot, TargetProgress } from './coordinator.ts';
import { relative } from 'node:path';

const nf = new Intl.NumberFormat('en-US');

export function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Cases per second: whole numbers, one decimal below 10 (a VM target runs a fraction of a case per second). */
export function fmtRate(r: number): string {
  return r >= 10 || r === 0 ? nf.format(Math.round(r)) : r.toFixed(1);
}

function findings(c: TargetProgress['counts']): number {
  return c.divergence + c.crash + c.hang;
}

/** 0..1, or undefined when the budget is open-ended. */
export function fractionDone(s: ProgressSnapshot): number | undefined {
  if (s.casesBudget !== undefined && s.targets.length) {
    const done = s.targets.reduce((n, t) => n + t.counts.executed + t.counts.refused + t.counts.failed + t.counts.cancelled, 0);
    return Math.min(1, done / (s.casesBudget * s.targets.length));
  }
  if (s.remainingMs !== undefined) return Math.min(1, s.elapsedMs / Math.max(1, s.elapsedMs + s.remainingMs));
  return undefined;
}

export function statusText(s: ProgressSnapshot): string {
  const parts = s.targets.map(
    (t) => `${t.target} ${nf.format(t.counts.executed)} cases ${fmtRate(t.rate)}/s ${findings(t.counts)} found${t.workers ? '' : ' (no worker)'}`,
  );
  const left =
    s.draining ? 'finishing queued batches'
    : s.remainingMs !== undefined ? `${fmtDuration(s.remainingMs)} left`
    : s.casesBudget !== undefined ? `${nf.format(s.casesBudget)} cases per target`
    : `${fmtDuration(s.elapsedMs)} (until stopped)`;
  return `${parts.join(' | ')} | ${left}`;
}

export function barLine(s: ProgressSnapshot, width: number): string {
  const f = fractionDone(s);
  const text = statusText(s);
  if (f === undefined) return text.slice(0, width - 1);
  const barWidth = Math.max(10, Math.min(30, width - text.length - 8));
  const full = Math.round(f * barWidth);
  const bar = `[${'#'.repeat(full)}${'-'.repeat(barWidth - full)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
  return `${bar} ${text}`.slice(0, width - 1);
}

export class ProgressDisplay {
  private last = '';
  private lastLog = 0;
  private drawn = false;

  constructor(
    private readonly tty: boolean,
    private readonly log: Logger,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    /** Without a terminal: one log line this often. */
    private readonly logEveryMs = 5000,
  ) {}

  update(s: ProgressSnapshot): void {
    if (this.tty) {
      this.last = barLine(s, this.stream.columns || 100);
      this.redraw();
      return;
    }
    const now = Date.now();
    if (now - this.lastLog < this.logEveryMs) return;
    this.lastLog = now;
    this.log.info(
      {
        elapsedS: Math.round(s.elapsedMs / 1000),
        ...(s.remainingMs !== undefined ? { leftS: Math.round(s.remainingMs / 1000) } : {}),
        targets: Object.fromEntries(s.targets.map((t) => [t.target, { cases: t.counts.executed, perS: Math.round(t.rate), found: findings(t.counts), inflight: t.inflightBatches, workers: t.workers }])),
        memory: s.memory,
      },
      `progress: ${statusText(s)}`,
    );
  }

  /** Erase the bar (before other output); the next update redraws it. */
  clear(): void {
    if (this.tty && this.drawn) {
      this.stream.write('\r\x1b[K');
      this.drawn = false;
    }
  }

  private redraw(): void {
    if (!this.last) return;
    this.stream.write(`\r\x1b[K${this.last}`);
    this.drawn = true;
  }

  /** Write log text above the bar. */
  writeAbove(text: string): void {
    this.clear();
    this.stream.write(text);
    this.redraw();
  }

  done(): void {
    this.clear();
    this.last = '';
  }
}

/**
 * A logger like infra/log.ts's pretty one, whose lines go above the progress
 * bar instead of through it. Only for terminals (JSON logs never share a line with a bar).
 */
export function barAwareLogger(display: ProgressDisplay, opts: { level?: LogLevel; name: string }): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      display.writeAbove(chunk.toString());
      cb();
    },
  });
  return pino(
    { level: resolveLogLevel(opts.level ? { level: opts.level } : {}), name: opts.name, base: { pid: process.pid } },
    pretty({ destination: sink, sync: true, colorize: true, singleLine: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }),
  );
}

function display(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/** The summary for people: a table per target, scenarios, findings and where the files are. */
export function summaryLines(s: CampaignSummary): string[] {
  const state = s.finished ? `finished after ${fmtDuration(s.elapsedMs)}` : `paused after ${fmtDuration(s.elapsedMs)} (run the same command again to resume)`;
  const lines = [`campaign ${s.campaign} (seed ${s.seed}) ${state}; generator: ${s.generator}${s.resumed ? '; resumed' : ''}`, ''];
  const rows = s.targets.map((t) => {
    const c = t.counts;
    const avg = s.elapsedMs > 0 ? (c.executed * 1000) / s.elapsedMs : 0;
    return [
      t.target,
      nf.format(c.executed),
      fmtRate(avg),
      nf.format(c.pass),
      nf.format(c.divergence),
      nf.format(c.crash),
      nf.format(c.hang),
      nf.format(c.unsupported),
      nf.format(c.infraError + c.failed + c.lost),
      nf.format(c.refused + c.cancelled),
      nf.format(c.stackReused),
    ];
  });
  lines.push(formatTable(['target', 'cases', 'execs/s', 'pass', 'divergences', 'crashes', 'hangs', 'unsupported', 'infra errors', 'refused/cancelled', 'on a kept stack'], rows));
  const scen = new Map<string, number>();
  for (const t of s.targets) for (const [k, v] of Object.entries(t.scenarios)) scen.set(k, (scen.get(k) ?? 0) + v);
  if (scen.size) {
    const keys = [...scen.keys()].sort();
    lines.push('', `scenarios exercised: ${keys.map((k) => `${k} ${nf.format(scen.get(k)!)}`).join(', ')}`);
  }
  if (s.abandonedBatches) lines.push('', `${s.abandonedBatches} batch(es) were still running when the drain timed out; their results are not counted`);
  lines.push('');
  const found = s.targets.reduce((n, t) => n + findings(t.counts), 0);
  if (found) {
    lines.push(`${nf.format(found)} finding(s) in ${s.signatures} distinct signature(s): ${s.someSignatures.slice(0, 5).join(', ')}${s.signatures > 5 ? ', ...' : ''}`);
    lines.push(`reports (one per signature): ${display(`${s.dataDir}/reports`)}/<signature>/report.md`);
    lines.push(`every finding of this campaign: ${display(`${s.dataDir}/divergences/${s.campaign}`)}/`);
  } else lines.push('no findings');
  const infra = s.targets.reduce((n, t) => n + t.counts.infraError, 0);
  if (infra) lines.push(`infrastructure errors (not findings), with their reasons: ${display(`${s.dataDir}/campaigns/${s.campaign}/infra-errors.jsonl`)}`);
  lines.push(`corpus: ${display(`${s.dataDir}/corpus`)}/   campaign record: ${display(`${s.dataDir}/campaigns/${s.campaign}`)}/`);
  return lines;
}
