/**
 * TEST-ONLY targets, loaded into workers through BLOCKFARM_TARGET_PLUGINS
 * (worker/farm/targets.ts). Each wraps the model target and says what it does
 * wrong in its name; none of them is a real target, and a real build never
 * loads this file.
 *
 * - testonly_corrupt:model  reports the model's own prediction, except that for
 *   the cases `corrupts(caseId)` selects it replaces the data of the first read
 *   with bytes no op wrote. The oracle must call each of those a divergence,
 *   and nothing else.
 * - testonly_crash:model    kills its own process (the runner) on the cases
 *   `crashes(caseId)` selects, like a target with a native crash.
 * - testonly_broken:model   ends the cases `breaks(caseId)` selects in an
 *   infrastructure error (as a target whose VM would not come up), the rest as the model.
 * - testonly_slow:model     sleeps BLOCKFARM_TEST_SLOW_MS (default 200) per case,
 *   so a batch is long enough to kill its worker in the middle of it. With
 *   BLOCKFARM_TEST_RUN_LOG set, every run appends "<case id> <pid>" to that
 *   file, so a test can see a case that ran twice.
 */
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { predictObservation } from '../../../model/index.ts';
import type { Observation } from '../../../model/index.ts';
import { caseId } from '../../../worker/farm/protocol.ts';
import type { RunRequest, Target, TargetFactory, TargetRun } from '../../../worker/targets/target.ts';

function bucket(id: string, salt: string): number {
  return createHash('sha256').update(`${salt}:${id}`).digest()[0]!;
}

/** About one case in five is corrupted (only those with a read that returned data can be). */
export function corrupts(id: string): boolean {
  return bucket(id, 'corrupt') < 51;
}

/** About one case in forty crashes the runner. */
export function crashes(id: string): boolean {
  return bucket(id, 'crash') < 7;
}

/** About one case in ten meets a broken target. */
export function breaks(id: string): boolean {
  return bucket(id, 'broken') < 26;
}

/** The observation with the first read's data replaced by garbage, or undefined if no read returned data. */
export function corruptObservation(o: Observation): Observation | undefined {
  const i = o.results.findIndex((r) => r.data && r.data.length > 0 && r.ret > 0);
  if (i < 0) return undefined;
  const r = o.results[i]!;
  const results = [...o.results];
  results[i] = { ...r, data: [{ offset: 0, length: r.ret, src: 'unknown', sample: 'deadbeefdeadbeef' }] };
  return { ...o, results };
}

type Mode = 'corrupt' | 'crash' | 'slow' | 'broken';

class Wrapped implements Target {
  constructor(
    readonly name: string,
    private readonly mode: Mode,
  ) {}

  async unsupportedReason(): Promise<string | undefined> {
    return undefined;
  }

  async run(req: RunRequest): Promise<TargetRun> {
    const observation = predictObservation(req.theCase, req.info, this.name);
    const id = caseId(req.theCase);
    if (this.mode === 'corrupt' && corrupts(id)) return { kind: 'observed', observation: corruptObservation(observation) ?? observation };
    if (this.mode === 'crash' && crashes(id)) process.kill(process.pid, 'SIGKILL');
    if (this.mode === 'broken' && breaks(id)) return { kind: 'infra-error', message: `TEST ONLY: the broken target failed case ${id}` };
    if (this.mode === 'slow') {
      const runLog = process.env.BLOCKFARM_TEST_RUN_LOG;
      if (runLog) appendFileSync(runLog, `${id} ${process.pid}\n`);
      await new Promise((r) => setTimeout(r, Number(process.env.BLOCKFARM_TEST_SLOW_MS ?? 200)));
    }
    return { kind: 'observed', observation };
  }

  async close(): Promise<void> {}
}

function factory(mode: Mode): TargetFactory {
  const name = `testonly_${mode}:model`;
  return {
    describe: `TEST ONLY: the model target, ${{ corrupt: 'with some outcomes corrupted on purpose', crash: 'killing its process on some cases', slow: 'slowed down', broken: 'failing some cases as infrastructure errors' }[mode]}`,
    matches: (n) => n === name,
    create: async () => new Wrapped(name, mode),
    requirements: async () => [{ what: 'nothing (a test-only wrapper of the model)', status: 'ok' }],
  };
}

export const targetFactories: TargetFactory[] = [factory('corrupt'), factory('crash'), factory('slow'), factory('broken')];
