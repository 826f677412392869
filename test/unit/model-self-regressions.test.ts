/**
 * Cases on which the model once disagreed with itself (its own prediction,
 * judged, was a divergence): each must pass its own prediction, and the op
 * that went wrong must be held to what documented semantics allow.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { judgeObservation, predictObservation, validateCase } from '../../model/index.ts';

function load(name: string) {
  const v = validateCase(JSON.parse(readFileSync(new URL(`../fixtures/model/${name}.json`, import.meta.url), 'utf8')));
  if (!v.ok) throw new Error(`${name} is invalid`);
  return v;
}

describe('model self-consistency regressions', () => {
  it('a write whose buffer faults at once never reaches dm-snapshot: EFAULT, not a copy-out EIO', () => {
    const v = load('cow-eio-vs-faulting-buffer');
    const obs = predictObservation(v.value, v.info);
    expect(obs.results.find((r) => r.op === 24)).toMatchObject({ ret: -1, errno: 'EFAULT' });
    expect(judgeObservation(v.value, v.info, obs)).toMatchObject({ verdict: 'pass' });
    const eio = { ...obs, results: obs.results.map((r) => (r.op === 24 ? { op: 24, ret: -1, errno: 'EIO' } : r)) };
    expect(judgeObservation(v.value, v.info, eio)).toMatchObject({ verdict: 'divergence' });
  });
});
