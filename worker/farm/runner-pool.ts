/**
 * The worker's side of its runner children (contract: ./runner-messages.ts):
 * a pool of runner processes, at most `size`, each running one batch at a
 * time. A runner that dies is replaced on the next acquire; its batch ends as
 * { kind: 'died' } naming the first case that has no result.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from '../../infra/log.ts';
import type { CaseEnvelope, CaseResult } from './protocol.ts';
import { type CaseProblemLine, type FromRunner, RUNNER_OPTIONS_ENV, type RunnerOptions, type ToRunner } from './runner-messages.ts';

const RUNNER_FILE = fileURLToPath(new URL('./runner-child.ts', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export type BatchEnd =
  | { kind: 'done'; results: CaseResult[]; targetMs: number }
  /** Stopped early by abort(): the results so far (the batch goes back to the queue). */
  | { kind: 'aborted'; results: CaseResult[] }
  | { kind: 'invalid'; problems: CaseProblemLine[] }
  | { kind: 'refused'; message: string }
  | { kind: 'failed'; message: string; results: CaseResult[] };

export interface BatchRequest {
  batch: string;
  target: string;
  caseTimeoutMs: number;
  cases: CaseEnvelope[];
}

export interface RunnerPoolOptions {
  /** At most this many runners (the worker's concurrency). */
  size: number;
  runner: RunnerOptions;
  log: Logger;
  /**
   * Kill a runner that sends nothing for this long past the case timeout.
   * @defaultValue 30000
   */
  answerGraceMs?: number;
}

class Runner {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  private exitInfo: string | undefined;
  private onMessage: ((m: FromRunner) => void) | undefined;
  private onExit: ((why: string) => void) | undefined;

  constructor(opts: RunnerOptions) {
    this.child = fork(RUNNER_FILE, [], {
      execArgv: ['--import', TSX_LOADER],
      env: { ...process.env, [RUNNER_OPTIONS_ENV]: JSON.stringify(opts) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.ready = new Promise((resolve, reject) => {
      const onFirst = (m: FromRunner) => {
        if (m.t === 'ready') {
          this.child.off('message', onFirst);
          resolve();
        }
      };
      this.child.on('message', onFirst);
      this.child.once('exit', () => reject(new Error(`runner exited while starting (${this.exitInfo})`)));
      this.child.once('error', reject);
    });
    this.ready.catch(() => {});
    this.child.on('message', (m: FromRunner) => this.onMessage?.(m));
    this.child.once('exit', (code, signal) => {
      this.exitInfo = signal ? `killed by ${signal}` : `exit code ${code}`;
      this.onExit?.(this.exitInfo);
    });
  }

  get alive(): boolean {
    return this.exitInfo === undefined && this.child.connected;
  }

  send(msg: ToRunner): void {
    if (this.alive) this.child.send(msg);
  }

  run(req: BatchRequest, answerGraceMs: number, log: Logger): Promise<BatchEnd> {
    return new Promise<BatchEnd>((resolve) => {
      const results: CaseResult[] = [];
      let watchdog: NodeJS.Timeout | undefined;
      const finish = (end: BatchEnd) => {
        clearTimeout(watchdog);
        this.onMessage = undefined;
        this.onExit = undefined;
        resolve(end);
      };
      // The runner may take the cases in another order than the batch's (run-order.ts): name the first not reported.
      const firstMissing = () => {
        const reported = new Set(results.map((r) => r.index));
        const next = req.cases.find((c) => !reported.has(c.index));
        return next ? `case #${next.index} (${next.id}) or another one not reported yet` : 'after its last case';
      };
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          log.warn({ batch: req.batch, pid: this.child.pid }, 'runner silent past the case timeout: killing it');
          this.child.kill('SIGKILL');
        }, req.caseTimeoutMs + answerGraceMs);
      };
      this.onMessage = (m) => {
        if (m.t === 'ready' || m.batch !== req.batch) return;
        arm();
        switch (m.t) {
          case 'results': results.push(...m.results); return;
          case 'done': return finish(m.aborted ? { kind: 'aborted', results } : { kind: 'done', results, targetMs: m.targetMs });
          case 'invalid': return finish({ kind: 'invalid', problems: m.problems });
          case 'refused': return finish({ kind: 'refused', message: m.message });
          case 'failed': return finish({ kind: 'failed', message: m.message, results });
        }
      };
      this.onExit = (why) => finish({ kind: 'failed', message: `the runner process died (${why}) while running ${firstMissing()}`, results });
      if (!this.alive) return finish({ kind: 'failed', message: `the runner process is gone (${this.exitInfo ?? 'disconnected'})`, results });
      arm();
      this.send({ t: 'batch', ...req });
    });
  }

  async stop(): Promise<void> {
    if (this.exitInfo !== undefined) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    // Disconnecting lets the runner close its targets (VMs) and exit.
    if (this.child.connected) this.child.disconnect();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
}

export class RunnerPool {
  private readonly idle: Runner[] = [];
  private readonly busy = new Map<string, Runner>();
  /** Batches asked to stop before their runner had them. */
  private readonly abortedEarly = new Set<string>();
  private readonly opts: Required<RunnerPoolOptions>;
  private closed = false;

  constructor(opts: RunnerPoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new Error(`runner pool size must be a positive integer, not ${opts.size}`);
    this.opts = { answerGraceMs: 30_000, ...opts };
  }

  /** Run one batch in a runner (started if none is idle); never throws. */
  async run(req: BatchRequest): Promise<BatchEnd> {
    if (this.closed) return { kind: 'failed', message: 'the worker is shutting down', results: [] };
    let runner = this.idle.pop();
    while (runner && !runner.alive) runner = this.idle.pop();
    if (!runner) {
      runner = new Runner(this.opts.runner);
      try {
        await runner.ready;
      } catch (err) {
        return { kind: 'failed', message: `could not start a runner process: ${(err as Error).message}`, results: [] };
      }
    }
    if (this.abortedEarly.delete(req.batch)) {
      this.idle.push(runner);
      return { kind: 'aborted', results: [] };
    }
    this.busy.set(req.batch, runner);
    try {
      return await runner.run(req, this.opts.answerGraceMs, this.opts.log);
    } finally {
      this.busy.delete(req.batch);
      if (runner.alive && !this.closed) this.idle.push(runner);
      else void runner.stop();
    }
  }

  /** Ask the runner of a batch to stop after its current case. */
  abort(batch: string): void {
    const r = this.busy.get(batch);
    if (r) r.send({ t: 'abort', batch });
    else this.abortedEarly.add(batch);
  }

  /** Kill the runner of a batch at once (its batch ends as failed). */
  kill(batch: string): void {
    this.busy.get(batch)?.child.kill('SIGKILL');
  }

  get pids(): number[] {
    return [...this.idle, ...this.busy.values()].map((r) => r.child.pid ?? 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle.splice(0), ...this.busy.values()];
    await Promise.all(all.map((r) => r.stop()));
  }
}
