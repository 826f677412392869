/**
 * Watching a guest's serial console while a case runs: the same titled
 * parser as the host's kernel log (worker/kernel-log). A report that stops
 * the kernel (panic, Oops, BUG...) ends the case as a crash; a hung-task,
 * soft-lockup or RCU-stall report ends it as a hang. The watcher waits a
 * moment after the header so the report's stack trace is complete.
 */
import { type KernelReport, parseKernelLog } from '../../kernel-log/parse.ts';
import type { Console } from './vm.ts';

const HANG_KINDS = new Set(['hung-task', 'soft-lockup', 'rcu-stall']);
/** Cheap pre-filter: only parse when a chunk could start a report that ends a case. */
const INTERESTING = /Kernel panic|Oops|BUG|general protection|INFO: task|soft lockup|rcu.*stall|Call Trace|RIP:|end trace|KASAN|UBSAN/;

export interface ConsoleVerdict {
  kind: 'crash' | 'hang';
  report: KernelReport;
  /** The console since the watch began. */
  log: string;
}

export function judgeConsole(text: string): { report: KernelReport; kind: 'crash' | 'hang' } | undefined {
  const reports = parseKernelLog(text);
  const crash = reports.find((r) => r.crash);
  if (crash) return { report: crash, kind: 'crash' };
  const hang = reports.find((r) => HANG_KINDS.has(r.kind));
  return hang ? { report: hang, kind: 'hang' } : undefined;
}

export class ConsoleWatch {
  private readonly from: number;
  private stop: () => void;
  private settleTimer?: NodeJS.Timeout;
  readonly verdict: Promise<ConsoleVerdict>;
  private resolveVerdict!: (v: ConsoleVerdict) => void;
  private seen = false;

  constructor(
    private readonly console: Console,
    /** How long to keep reading after a report starts, for its trace. */
    private readonly settleMs = 1500,
  ) {
    this.from = console.mark();
    this.verdict = new Promise((r) => (this.resolveVerdict = r));
    this.stop = console.listen((chunk) => this.onChunk(chunk));
  }

  text(): string {
    return this.console.text(this.from);
  }

  private onChunk(chunk: string): void {
    if (this.seen || !INTERESTING.test(chunk)) return;
    if (!judgeConsole(this.text())) return;
    this.seen = true;
    this.settleTimer = setTimeout(() => this.settle(), this.settleMs);
  }

  /** Decide now (e.g. QEMU exited): a report in the console, or undefined. */
  settle(): ConsoleVerdict | undefined {
    clearTimeout(this.settleTimer);
    const text = this.text();
    const j = judgeConsole(text);
    if (!j) return undefined;
    const v = { ...j, log: text };
    this.resolveVerdict(v);
    return v;
  }

  close(): void {
    clearTimeout(this.settleTimer);
    this.stop();
  }
}
