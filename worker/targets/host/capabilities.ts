/**
 * What this machine's kernel and userland offer, for deciding which cases the
 * host can run. The probes themselves are infra/machine.ts (shared with
 * `blockfarm doctor`); this adds the per-target cache and the mapping from a
 * layer's needs to probes.
 */
import { checkFilesystem, checkKernelModule, checkRoot, defaultProbeEnv, findExecutable, type ProbeEnv } from '../../../infra/machine.ts';
import { FS_FACTS } from '../../../model/index.ts';

const FS_MODULES = new Set(Object.values(FS_FACTS).map((f) => f.module));

export class HostCapabilities {
  private readonly modules = new Map<string, Promise<boolean>>();
  private readonly tools = new Map<string, Promise<boolean>>();

  constructor(private readonly env: ProbeEnv = defaultProbeEnv()) {}

  /** Present, built in or loadable. A module we cannot tell about counts as present: set-up will say. */
  hasModule(name: string): Promise<boolean> {
    let p = this.modules.get(name);
    if (!p) {
      const norm = name.replace(/-/g, '_');
      p = (FS_MODULES.has(name) ? checkFilesystem(name, this.env) : checkKernelModule(norm, this.env)).then((c) => c.status !== 'missing');
      this.modules.set(name, p);
    }
    return p;
  }

  hasTool(name: string): Promise<boolean> {
    let p = this.tools.get(name);
    if (!p) {
      p = findExecutable(name, this.env).then((x) => x !== undefined);
      this.tools.set(name, p);
    }
    return p;
  }

  isRoot(): boolean {
    return checkRoot(this.env).status === 'ok';
  }
}
