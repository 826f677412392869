/** Known target kinds. Host and QEMU register here as they land. */
import { hostTargetFactory } from './host/factory.ts';
import { modelTargetFactory } from './model/model-target.ts';
import { qemuTargetFactory } from './qemu/factory.ts';
import type { TargetFactory } from './target.ts';

export const TARGET_FACTORIES: readonly TargetFactory[] = [modelTargetFactory, hostTargetFactory, qemuTargetFactory];

export function factoryFor(name: string): TargetFactory | undefined {
  return TARGET_FACTORIES.find((f) => f.matches(name));
}
