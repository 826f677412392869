/**
 * The `model` target: the reference model run in process. It reports the run
 * the model itself predicts, so the whole farm (queues, judging, triage) can
 * run and be tested without a kernel, and any disagreement between the
 * model's predictor and its judge shows up as a divergence here.
 */
import { predictObservation } from '../../../model/index.ts';
import type { RunRequest, Target, TargetFactory, TargetRun } from '../target.ts';

export class ModelTarget implements Target {
  readonly name = 'model';

  async unsupportedReason(): Promise<string | undefined> {
    return undefined;
  }

  async run(req: RunRequest): Promise<TargetRun> {
    return { kind: 'observed', observation: predictObservation(req.theCase, req.info, this.name) };
  }

  async close(): Promise<void> {}
}

export const modelTargetFactory: TargetFactory = {
  describe: 'the reference model, in process (always available)',
  matches: (name) => name === 'model',
  create: async () => new ModelTarget(),
  requirements: async () => [{ what: 'nothing: the model runs in process', status: 'ok' }],
};
