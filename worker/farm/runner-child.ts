/**
 * A runner: the child process in which a farm worker runs batches (contract:
 * ./runner-messages.ts). It validates every case of a batch before running
 * any, keeps its targets open across batches (a VM boots once per runner, not
 * once per batch), and closes them when the worker disconnects.
 */
import { runOrder } from './run-order.ts';
import { type Case, type StackInfo, validateCase } from '../../model/index.ts';
import { createLogger } from '../../infra/log.ts';
import { runCase } from '../run-case.ts';
import { type Target, TargetRefused } from '../targets/target.ts';
import { type CaseResult, caseId, compactOutcome } from './protocol.ts';
import { type CaseProblemLine, FLUSH_MS, type FromRunner, RUNNER_OPTIONS_ENV, type RunnerOptions, type ToRunner } from './runner-messages.ts';
import { resolveTargetFactory } from './targets.ts';

const options: RunnerOptions = JSON.parse(process.env[RUNNER_OPTIONS_ENV] ?? '{"allowHost":false}') as RunnerOptions;
const log = createLogger({ name: 'runner' }).child({ runner: process.pid });
const targets = new Map<string, Promise<Target>>();
let current: { batch: string; abort: AbortController; aborted: boolean } | undefined;
/** Aborts that arrived before their batch started (set-up still running). */
const abortedEarly = new Set<string>();

function send(msg: FromRunner): void {
  process.send?.(msg);
}

async function targetFor(name: string): Promise<Target> {
  let t = targets.get(name);
  if (!t) {
    t = (async () => {
      const factory = await resolveTargetFactory(name);
      if (!factory) throw new TargetRefused(`no target factory matches '${name}' in this build`, 3);
      return factory.create(name, { allowHost: options.allowHost, ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
    })();
    targets.set(name, t);
    t.catch(() => targets.delete(name));
  }
  return t;
}

async function runBatch(msg: Extract<ToRunner, { t: 'batch' }>): Promise<void> {
  const { batch, cases } = msg;
  // Validate all first: a job with an invalid case is refused whole, before anything runs.
  const problems: CaseProblemLine[] = [];
  const valid: Array<{ c: Case; info: StackInfo }> = [];
  for (const env of cases) {
    const v = validateCase(env.case);
    if (!v.ok) {
      problems.push({ index: env.index, id: env.id, issues: v.issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`) });
      continue;
    }
    const id = caseId(v.value);
    if (id !== env.id) {
      problems.push({ index: env.index, id: env.id, issues: [`(case): its content hashes to ${id}, not to its id ${env.id} (altered in transit?)`] });
      continue;
    }
    valid.push({ c: v.value, info: v.info });
  }
  if (problems.length) return send({ t: 'invalid', batch, problems });

  let target: Target;
  try {
    target = await targetFor(msg.target);
  } catch (err) {
    if (err instanceof TargetRefused) return send({ t: 'refused', batch, message: err.message });
    return send({ t: 'failed', batch, message: `could not start target '${msg.target}': ${(err as Error).message}` });
  }

  const state = { batch, abort: new AbortController(), aborted: abortedEarly.delete(batch) };
  current = state;
  let pending: CaseResult[] = [];
  let lastFlush = performance.now();
  let targetMs = 0;
  try {
    for (const i of runOrder(valid.map((v) => v.info), target, valid.map((v) => v.c))) {
      if (state.aborted) break;
      const env = cases[i]!;
      const { c, info } = valid[i]!;
      const caseAbort = new AbortController();
      const onAbort = () => caseAbort.abort();
      state.abort.signal.addEventListener('abort', onAbort);
      const timer = setTimeout(() => caseAbort.abort(new Error(`case timeout ${msg.caseTimeoutMs} ms`)), msg.caseTimeoutMs);
      const t0 = performance.now();
      let outcome;
      try {
        outcome = await runCase(target, c, info, caseAbort.signal);
      } finally {
        clearTimeout(timer);
        state.abort.signal.removeEventListener('abort', onAbort);
      }
      const ms = performance.now() - t0;
      targetMs += ms;
      // A case cut short by the shutdown abort is not a result: it goes back with the batch.
      if (state.aborted) break;
      pending.push({ id: env.id, index: env.index, ms: Math.round(ms * 1000) / 1000, outcome: compactOutcome(outcome), ...(target.lastRunReusedStack ? { stackReused: true as const } : {}) });
      const now = performance.now();
      if (now - lastFlush >= FLUSH_MS) {
        send({ t: 'results', batch, results: pending });
        pending = [];
        lastFlush = now;
      }
    }
    if (pending.length) send({ t: 'results', batch, results: pending });
    send({ t: 'done', batch, targetMs: Math.round(targetMs * 1000) / 1000, aborted: state.aborted });
  } catch (err) {
    // runCase turns every target failure into an outcome; reaching here is a bug in the runner or the oracle.
    send({ t: 'failed', batch, message: `runner error: ${(err as Error).message}` });
  } finally {
    current = undefined;
  }
}

async function closeTargets(): Promise<void> {
  for (const t of targets.values()) {
    try {
      await (await t).close();
    } catch (err) {
      log.warn({ err }, 'closing a target failed');
    }
  }
  targets.clear();
}

let queue = Promise.resolve();
process.on('message', (msg: ToRunner) => {
  if (msg.t === 'abort') {
    if (current && current.batch === msg.batch) {
      current.aborted = true;
      current.abort.abort();
    } else abortedEarly.add(msg.batch);
    return;
  }
  if (msg.t === 'batch') queue = queue.then(() => runBatch(msg));
});

// The worker owns our lifetime: its signals reach us too (same process group), but we stop only when it lets go.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => {
  void closeTargets().finally(() => process.exit(0));
});

send({ t: 'ready' });
