/**
 * Where a kernel's symbols come from, for symbolize.ts: a System.map (Debian
 * ships one in the image package; `kernels build` and `kernels add
 * --system-map` keep one), else `nm -n` of a vmlinux with a symbol table;
 * file:line from `addr2line -f -i` on a vmlinux with DWARF (the -dbg
 * package's, fetched with `kernels fetch --dbg`, or a build's own with
 * debug info).
 */
import { open, readFile, stat } from 'node:fs/promises';
import { lastLine, runTool } from '../../infra/kernels/proc.ts';
import { type LineResolver, type SymbolizeOptions, SymbolTable, parseAddr2line, symbolizeLog } from './symbolize.ts';

export interface KernelSymbolFiles {
  /** A System.map. */
  systemMap?: string;
  /** ELF vmlinux files, tried in order: the first with a symbol table gives symbols, the first with DWARF gives lines. */
  vmlinux?: readonly string[];
}

async function isFile(p: string | undefined): Promise<boolean> {
  if (!p) return false;
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}

async function isElf(p: string): Promise<boolean> {
  const fh = await open(p, 'r').catch(() => undefined);
  if (!fh) return false;
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b.toString('latin1') === '\x7fELF';
  } finally {
    await fh.close();
  }
}

/** Section names of an ELF file (readelf -S -W). */
async function sections(elf: string): Promise<Set<string>> {
  const r = await runTool('readelf', ['-S', '-W', elf]).catch(() => undefined);
  const out = new Set<string>();
  if (!r || r.code !== 0) return out;
  for (const m of r.stdout.matchAll(/\]\s+(\.\S+)/g)) out.add(m[1]!);
  return out;
}

/** addr2line over one vmlinux, all addresses in one process. */
export function addr2lineResolver(vmlinux: string): LineResolver {
  return async (addrs) => {
    if (addrs.length === 0) return new Map();
    const r = await runTool('addr2line', ['-e', vmlinux, '-f', '-i', '-a', ...addrs.map((a) => `0x${a.toString(16)}`)], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`addr2line -e ${vmlinux} failed: ${lastLine(r)}`);
    return parseAddr2line(r.stdout);
  };
}

/** What a kernel offers for symbolization, or undefined when it offers nothing. */
export async function loadKernelSymbols(files: KernelSymbolFiles): Promise<SymbolizeOptions | undefined> {
  let symbols: SymbolTable | undefined;
  if (await isFile(files.systemMap)) {
    const t = SymbolTable.parse(await readFile(files.systemMap!, 'utf8'));
    if (t.size > 0) symbols = t;
  }
  let lines: LineResolver | undefined;
  for (const v of files.vmlinux ?? []) {
    if (!(await isFile(v)) || !(await isElf(v))) continue;
    const secs = await sections(v);
    if (!symbols && secs.has('.symtab')) {
      const r = await runTool('nm', ['-n', v]);
      if (r.code === 0) {
        const t = SymbolTable.parse(r.stdout);
        if (t.size > 0) symbols = t;
      }
    }
    if (!lines && secs.has('.debug_info') && secs.has('.debug_line')) lines = addr2lineResolver(v);
  }
  if (!symbols) return undefined;
  return lines ? { symbols, lines } : { symbols };
}

/** A function that symbolizes a log with one kernel's symbols, loaded once on first use. */
export class KernelSymbolizer {
  private loaded?: Promise<SymbolizeOptions | undefined>;

  constructor(private readonly files: KernelSymbolFiles) {}

  /** Whether this kernel has anything to symbolize with. */
  async available(): Promise<boolean> {
    return (await this.options()) !== undefined;
  }

  private options(): Promise<SymbolizeOptions | undefined> {
    this.loaded ??= loadKernelSymbols(this.files);
    return this.loaded;
  }

  /** The log symbolized; unchanged when there are no symbols or addr2line fails (a report is never lost to symbolization). */
  async symbolize(log: readonly string[]): Promise<string[]> {
    const opts = await this.options().catch(() => undefined);
    if (!opts) return [...log];
    try {
      return await symbolizeLog(log, opts);
    } catch {
      return await symbolizeLog(log, { ...opts, lines: undefined });
    }
  }
}
