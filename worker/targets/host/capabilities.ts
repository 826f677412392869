/** What this machine's kernel and userland offer, for deciding which cases the host can run. */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { delimiter, join } from 'node:path';

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...SYSTEM_DIRS];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Loaded, built in, or loadable: /sys/module, modules.builtin, modules.dep of the running kernel. */
export function kernelHasModule(name: string): boolean {
  const norm = name.replace(/-/g, '_');
  if (existsSync(`/sys/module/${norm}`)) return true;
  const dir = `/lib/modules/${release()}`;
  const lists = ['modules.builtin', 'modules.dep'];
  const re = new RegExp(`/${norm.replace(/_/g, '[-_]')}\\.ko(\\.[gx]z|\\.zst)?(:|$)`, 'm');
  return lists.some((f) => {
    try {
      return re.test(readFileSync(join(dir, f), 'utf8'));
    } catch {
      return false;
    }
  });
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
