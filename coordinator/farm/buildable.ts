/**
 * What a target can build, narrowed to its kernel. The generator's supports
 * are per target kind (coordinator/generate SUPPORTS: the host builds no dm
 * or md, a QEMU guest every layer kind), but one kernel may lack a module a
 * layer kind needs (Debian's 6.1 has no dm-dust); a case with such a layer
 * would only come back `unsupported`. The coordinator asks here once per
 * target before it generates, so that only cases the target can build go to
 * it.
 *
 * A QEMU target's kernel is the one its name resolves to on this machine (the
 * fetched kernels of infra/kernels, as the qemu target resolves it); its
 * modules.dep and modules.builtin say which modules it has, and each layer
 * kind's `needs` (model/layers) which modules the kind asks for. A
 * coordinator that has no such kernel (it runs on another machine than its
 * QEMU workers) keeps the kind-level supports; the workers then report the
 * cases they cannot build as `unsupported`, as before.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Layer, type LayerKind, layerModule } from '../../model/index.ts';
import { targetKind } from '../../worker/farm/target-defaults.ts';
import { kernelFor } from '../../worker/targets/qemu/factory.ts';
import { SUPPORTS, type Supports, generateCases } from '../generate/index.ts';

export interface Buildable {
  supports: Supports;
  /** Layer kinds the kind-level supports allow but this target's kernel cannot build, with why. */
  dropped: Array<{ kind: LayerKind; why: string }>;
  /** Where the answer comes from (for the log). */
  basis: string;
}

/** The kind-level supports of a target (what coordinator/farm/case-source used before narrowing). */
export function kindSupports(target: string): Supports {
  const kind = targetKind(target);
  return kind === 'host' ? SUPPORTS.host : kind === 'qemu' ? SUPPORTS.qemu : SUPPORTS.all;
}

const SAMPLE_SEED = 0x5eed;
let samples: Map<LayerKind, Layer[]> | undefined;

/**
 * Layers of every kind as the generator makes them (a kind's needs can depend
 * on its parameters: authenticated dm-crypt needs more than plain dm-crypt).
 * Deterministic; made once per process.
 */
function sampleLayers(): Map<LayerKind, Layer[]> {
  if (samples) return samples;
  const out = new Map<LayerKind, Layer[]>();
  for (const c of generateCases(SAMPLE_SEED, 300)) {
    for (const l of c.stack.layers) {
      const k = l.kind as LayerKind;
      const list = out.get(k) ?? [];
      if (list.length < 20) list.push(l);
      out.set(k, list);
    }
  }
  samples = out;
  return out;
}

const moduleName = (m: string) => m.replace(/-/g, '_');

/** Module names (underscores) a kernel has, from its modules.dep and modules.builtin. */
async function kernelModules(modulesDir: string): Promise<Set<string>> {
  const have = new Set<string>();
  for (const file of ['modules.dep', 'modules.builtin']) {
    const text = await readFile(path.join(modulesDir, file), 'utf8');
    for (const line of text.split('\n')) {
      const ko = line.split(':')[0]!.trim();
      if (!ko) continue;
      have.add(moduleName(path.basename(ko).replace(/\.ko(\.(xz|zst|gz))?$/, '')));
    }
  }
  return have;
}

/**
 * The supports of `target`, narrowed to its kernel where this machine knows
 * the kernel. A kind is dropped when every sampled layer of it needs a module
 * the kernel lacks (a kind whose layers need it only with some parameters is
 * kept: those cases come back unsupported, the others run).
 */
export async function buildableFor(target: string, env: NodeJS.ProcessEnv = process.env): Promise<Buildable> {
  const base = kindSupports(target);
  if (targetKind(target) !== 'qemu' || !target.startsWith('qemu')) return { supports: base, dropped: [], basis: `the ${targetKind(target)} target kind` };
  let modulesDir: string;
  let id: string;
  try {
    const k = await kernelFor(target, env);
    if (!k.hasModules) return { supports: base, dropped: [], basis: `kernel ${k.info.id} (no module tree: everything built in)` };
    modulesDir = k.modulesDir;
    id = k.info.id;
  } catch (err) {
    return { supports: base, dropped: [], basis: `the qemu target kind (this machine cannot resolve ${target}: ${(err as Error).message})` };
  }
  let have: Set<string>;
  try {
    have = await kernelModules(modulesDir);
  } catch (err) {
    return { supports: base, dropped: [], basis: `the qemu target kind (kernel ${id}: no module list: ${(err as Error).message})` };
  }
  const byKind = sampleLayers();
  const dropped: Buildable['dropped'] = [];
  for (const kind of base.layerKinds) {
    const layers = byKind.get(kind) ?? [];
    if (!layers.length) continue;
    const missing = layers.map((l) => layerModule(l).needs(l).modules.filter((m) => !have.has(moduleName(m))));
    if (missing.every((m) => m.length > 0)) dropped.push({ kind, why: `kernel ${id} has no ${[...new Set(missing.flat())].join(', ')} module` });
  }
  const gone = new Set(dropped.map((d) => d.kind));
  return { supports: { layerKinds: base.layerKinds.filter((k) => !gone.has(k)), fsTypes: base.fsTypes }, dropped, basis: `kernel ${id}'s modules` };
}
