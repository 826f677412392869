/**
 * The import rules of DESIGN.md for the generation code: model/ imports
 * nothing of ours outside model/ (fast-check and zod only), corpus/ imports
 * only model/, and nothing outside coordinator/ imports coordinator/.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const p = join(dir, name);
    if (statSync(join(ROOT, p)).isDirectory()) out.push(...files(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Top-level folder of every relative import, and every package import, of a file. */
function imports(file: string): { ours: string[]; packages: string[] } {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
  const ours = specs.filter((s) => s.startsWith('.')).map((s) => relative(ROOT, resolve(join(ROOT, dirname(file)), s)).split('/')[0]!);
  const packages = specs.filter((s) => !s.startsWith('.')).map((s) => (s.startsWith('node:') ? 'node' : s.split('/')[0]!));
  return { ours, packages };
}

describe('import rules for the generation code', () => {
  it('the layer modules (generation hooks included) stay pure: model/ only, fast-check and zod', () => {
    for (const f of files('model/layers')) {
      const { ours, packages } = imports(f);
      expect(ours.filter((x) => x !== 'model'), f).toEqual([]);
      expect(packages.filter((p) => p !== 'zod' && p !== 'fast-check'), f).toEqual([]);
    }
  });

  it('the corpus store imports model/ only (and Node)', () => {
    for (const f of files('corpus/store')) expect(imports(f).ours.filter((x) => x !== 'model' && x !== 'corpus'), f).toEqual([]);
  });

  it('the generator and classifier import model/, corpus/ and coordinator/ only', () => {
    for (const f of [...files('coordinator/generate'), ...files('coordinator/classify')])
      expect(imports(f).ours.filter((x) => !['model', 'corpus', 'coordinator'].includes(x)), f).toEqual([]);
  });
});
