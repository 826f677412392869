/**
 * Structural analysis of a stack: the layer graph (who sits on whom), a
 * bottom-up order, and the geometry bounds of every layer. Used by the
 * validator, the model and the targets alike.
 */
import type { Stack } from './schema/case.ts';
import { type GeometryBounds, type Layer, type LayerRole, type SemanticIssue, type StackView, LAYER_KINDS, layerModule } from './layers/index.ts';

export interface StackInfo extends StackView {
  layers: readonly Layer[];
  /** Bottom-up: every layer after the layers it sits on. Missing when the graph has a cycle. */
  order: Layer[];
  role(id: string): LayerRole | undefined;
  /** Every layer below `id`, nearest first (depth-first over all lower refs). */
  below(id: string): Layer[];
  /** The filesystem a file lives on, or that a block layer ultimately serves. */
  fsOf(fileId: string): Extract<Layer, { kind: 'fs' }> | undefined;
}

export interface StackAnalysis {
  info: StackInfo;
  issues: SemanticIssue[];
}

/** Analyse a stack that passed the shape check; semantic problems come back as issues with paths from the case root. */
export function analyzeStack(stack: Stack): StackAnalysis {
  const issues: SemanticIssue[] = [];
  const byId = new Map<string, Layer>();
  const index = new Map<string, number>();
  stack.layers.forEach((l, i) => {
    if (byId.has(l.id)) issues.push({ path: ['stack', 'layers', i, 'id'], message: `layer id '${l.id}' is used twice` });
    else {
      byId.set(l.id, l);
      index.set(l.id, i);
    }
  });

  const users = new Map<string, Layer[]>();
  for (const l of byId.values()) {
    for (const ref of layerModule(l).lower(l)) {
      const target = byId.get(ref.ref);
      const path = ['stack', 'layers', index.get(l.id)!, ...ref.field.replace(/\[(\d+)\]/g, '.$1').split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p))];
      if (!target) {
        issues.push({ path, message: `layer '${l.id}' sits on '${ref.ref}', which is not in the stack` });
        continue;
      }
      const role = LAYER_KINDS[target.kind].role;
      if (!ref.roles.includes(role)) {
        issues.push({ path, message: `a ${l.kind} layer cannot sit on '${ref.ref}' (a ${target.kind}: ${role}); it needs ${ref.roles.join(' or ')}` });
        continue;
      }
      users.set(ref.ref, [...(users.get(ref.ref) ?? []), l]);
    }
  }

  // Each device or file has one user, except a snapshot origin (many snapshots) and an fs (many files).
  for (const [id, us] of users) {
    const l = byId.get(id)!;
    if (l.kind === 'fs') continue;
    const exclusive = us.filter((u) => !(u.kind === 'dm-snapshot' && u.origin === id));
    if (exclusive.length > 1)
      issues.push({ path: ['stack', 'layers', index.get(id)!], message: `'${id}' is used by ${exclusive.map((u) => `'${u.id}'`).join(' and ')}; a device or file can back only one layer` });
  }

  // Bottom-up order; a cycle leaves layers out and is reported.
  const order: Layer[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (l: Layer, trail: string[]): void => {
    const s = state.get(l.id);
    if (s === 'done') return;
    if (s === 'visiting') {
      issues.push({ path: ['stack', 'layers', index.get(l.id)!], message: `the stack has a cycle: ${[...trail, l.id].join(' -> ')}` });
      return;
    }
    state.set(l.id, 'visiting');
    for (const ref of layerModule(l).lower(l)) {
      const t = byId.get(ref.ref);
      if (t) visit(t, [...trail, l.id]);
    }
    state.set(l.id, 'done');
    order.push(l);
  };
  for (const l of byId.values()) visit(l, []);

  const geometry = new Map<string, GeometryBounds>();
  const info: StackInfo = {
    layers: stack.layers,
    order,
    all: () => stack.layers,
    layer: (id) => byId.get(id),
    geometry: (id) => geometry.get(id),
    usersOf: (id) => users.get(id) ?? [],
    role: (id) => {
      const l = byId.get(id);
      return l ? LAYER_KINDS[l.kind].role : undefined;
    },
    below(id) {
      const out: Layer[] = [];
      const seen = new Set<string>();
      const walk = (x: string) => {
        const l = byId.get(x);
        if (!l) return;
        for (const ref of layerModule(l).lower(l)) {
          if (seen.has(ref.ref)) continue;
          seen.add(ref.ref);
          const t = byId.get(ref.ref);
          if (t) {
            out.push(t);
            walk(t.id);
          }
        }
      };
      walk(id);
      return out;
    },
    fsOf(fileId) {
      const f = byId.get(fileId);
      if (f?.kind !== 'file') return undefined;
      const fsl = byId.get(f.on);
      return fsl?.kind === 'fs' ? fsl : undefined;
    },
  };

  const cyclic = issues.some((i) => i.message.startsWith('the stack has a cycle'));
  if (!cyclic) {
    for (const l of order) {
      const m = layerModule(l);
      if (m.geometry) geometry.set(l.id, m.geometry(l, info));
    }
    for (const l of order) {
      for (const issue of layerModule(l).check(l, info))
        issues.push({ path: ['stack', 'layers', index.get(l.id)!, ...issue.path], message: issue.message });
    }
  }
  return { info, issues };
}
