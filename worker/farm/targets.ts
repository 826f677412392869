/**
 * Target factories as the farm sees them: the built-in registry
 * (worker/targets/registry.ts) plus plugin modules named in
 * BLOCKFARM_TARGET_PLUGINS (a comma-separated list of module paths, each
 * exporting `targetFactories: TargetFactory[]`). Plugins are how a site adds a
 * target without editing the registry, and how the tests add their
 * (honestly labelled) corrupting wrapper. The variable is read from the
 * worker's own environment, never from a job.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TARGET_FACTORIES } from '../targets/registry.ts';
import type { TargetFactory } from '../targets/target.ts';

export const PLUGINS_ENV = 'BLOCKFARM_TARGET_PLUGINS';

const loaded = new Map<string, Promise<TargetFactory[]>>();

async function loadPlugin(path: string): Promise<TargetFactory[]> {
  const abs = isAbsolute(path) ? path : resolve(path);
  const mod = (await import(pathToFileURL(abs).href)) as { targetFactories?: unknown };
  if (!Array.isArray(mod.targetFactories)) throw new Error(`${PLUGINS_ENV}: ${path} exports no targetFactories array`);
  return mod.targetFactories as TargetFactory[];
}

export async function targetFactories(env: NodeJS.ProcessEnv = process.env): Promise<TargetFactory[]> {
  const paths = (env[PLUGINS_ENV] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const plugins: TargetFactory[] = [];
  for (const p of paths) {
    let promise = loaded.get(p);
    if (!promise) loaded.set(p, (promise = loadPlugin(p)));
    plugins.push(...(await promise));
  }
  return [...plugins, ...TARGET_FACTORIES];
}

export async function resolveTargetFactory(name: string, env: NodeJS.ProcessEnv = process.env): Promise<TargetFactory | undefined> {
  return (await targetFactories(env)).find((f) => f.matches(name));
}
