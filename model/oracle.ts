/**
 * The oracle: given a validated case and what a target observed, the verdict.
 * A divergence names the op, what the model allowed, what the target did,
 * the first bad offset and which op wrote the bytes that belonged there.
 */
import type { Observation } from './observation.ts';
import type { Case } from './schema/case.ts';
import { CaseModel } from './semantics/case-model.ts';
import { judge, predict, predictedFinal } from './semantics/evaluate.ts';
import type { StackInfo } from './stack.ts';
import type { Verdict } from './verdict.ts';

export type OracleAnswer = (Verdict & { incomplete?: undefined }) | { incomplete: string };

export function judgeObservation(c: Case, info: StackInfo, obs: Observation): OracleAnswer {
  const model = new CaseModel(c, info, obs.geometry);
  const j = judge(model, obs);
  if (j.incomplete) return { incomplete: j.incomplete };
  return j.divergences.length ? { verdict: 'divergence', divergences: j.divergences, notes: j.notes } : { verdict: 'pass', notes: j.notes };
}

/** What a target that behaves exactly as the model's first choice everywhere would report. */
export function predictObservation(c: Case, info: StackInfo, target = 'model'): Observation {
  const model = new CaseModel(c, info);
  const { results, world } = predict(model);
  const geometry: Observation['geometry'] = {};
  for (const [id, g] of model.geometry) geometry[id] = { ...g };
  return { target, geometry, results, final: predictedFinal(model, world) };
}
