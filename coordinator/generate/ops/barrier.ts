/** Generators for `barrier` and `sleep` (model/ops/barrier.ts). Barriers are laid out by the program builder, never drawn. */
import type { Draw } from '../draw.ts';
import type { DraftOf } from './common.ts';

export function genBarrier(name: string): DraftOf<'barrier'> {
  return { kind: 'barrier', name };
}

/** Short sleeps: enough to widen a race window, never enough to slow a campaign. */
export function genSleep(d: Draw, max = 5): DraftOf<'sleep'> {
  return { kind: 'sleep', ms: d.int(0, max) };
}
