/**
 * Source lines for a crash or hang report, from the kernel's -dbg vmlinux
 * (`blockfarm kernels fetch ID --dbg`). Frames print as `func+0xOFF/0xLEN`,
 * which KASLR does not change: the function's link address comes from the
 * debug vmlinux's symbol table (nm; the package's own System.map is a stub),
 * plus the offset, and addr2line turns that into file:line, inlined callers
 * included. Only built-in code is covered: module frames (`[dm_mod]`) stay as
 * they are, since their debug files are not fetched (gigabytes).
 *
 * The report itself is not rewritten (its title and signature stay those of
 * the console); the lines are appended as a section of their own.
 */
import { runTool } from '../../../infra/kernels/proc.ts';

/** A frame of a built-in function: `func+0x1a/0x40` not followed by `[module]`. */
const FRAME = /(?:^|[\s:(])([A-Za-z_][\w.]*)\+(0x[0-9a-f]+)\/0x[0-9a-f]+(?!\s*\[)/;

export interface SymbolizedFrame {
  frame: string;
  /** addr2line's lines: `func at file:line`, then `(inlined by) ...`. */
  where: string[];
}

/** The distinct built-in frames of a report, in order of first appearance. */
export function framesOf(log: string): Array<{ frame: string; func: string; offset: number; returnAddress: boolean }> {
  const out: Array<{ frame: string; func: string; offset: number; returnAddress: boolean }> = [];
  const seen = new Set<string>();
  for (const line of log.split('\n')) {
    const m = FRAME.exec(line);
    if (!m) continue;
    const frame = `${m[1]}+${m[2]}`;
    if (seen.has(frame)) continue;
    seen.add(frame);
    // Stack frames hold return addresses (the call is the byte before); the RIP line is the faulting instruction itself.
    out.push({ frame, func: m[1]!, offset: Number.parseInt(m[2]!, 16), returnAddress: !/\bRIP: /.test(line) });
  }
  return out;
}

/** Debian's build directories in the debug info's file names (kernel-relative paths read better). */
const BUILD_DIR = /(?:\S*\/build_amd64_[^/\s]+\/|\/build\/reproducible-path\/linux-[^/\s]+\/)/g;

/** Link addresses of the text symbols of an ELF file. */
async function textSymbols(elf: string): Promise<Map<string, bigint>> {
  const r = await runTool('nm', ['--defined-only', elf], { maxBuffer: 64 << 20 });
  const out = new Map<string, bigint>();
  if (r.code !== 0) return out;
  for (const line of r.stdout.split('\n')) {
    const [addr, type, name] = line.split(' ');
    if (addr && name && (type === 't' || type === 'T' || type === 'w' || type === 'W') && !out.has(name)) out.set(name, BigInt(`0x${addr}`));
  }
  return out;
}

/** file:line for each built-in frame of `log`; [] when the tools or the symbols are missing. */
export async function symbolizeFrames(log: string, dbgVmlinux: string, maxFrames = 64): Promise<SymbolizedFrame[]> {
  const frames = framesOf(log).slice(0, maxFrames);
  if (frames.length === 0) return [];
  const syms = await textSymbols(dbgVmlinux).catch(() => new Map<string, bigint>());
  const known = frames.filter((f) => syms.has(f.func));
  if (known.length === 0) return [];
  const addrs = known.map((f) => `0x${(syms.get(f.func)! + BigInt(f.returnAddress && f.offset > 0 ? f.offset - 1 : f.offset)).toString(16)}`);
  // -a starts each address's answer with the address; inlined callers follow on lines of their own.
  const r = await runTool('addr2line', ['-e', dbgVmlinux, '-a', '-f', '-i', '-p', ...addrs], { maxBuffer: 16 << 20 }).catch(() => undefined);
  if (!r || r.code !== 0) return [];
  const groups: string[][] = [];
  for (const line of r.stdout.split('\n')) {
    if (line === '') continue;
    const head = /^0x[0-9a-f]+: (.*)$/.exec(line);
    const text = (head ? head[1]! : line.trim()).replace(BUILD_DIR, '');
    if (head) groups.push([text]);
    else groups[groups.length - 1]?.push(text);
  }
  return known.map((f, i) => ({ frame: f.frame, where: groups[i] ?? [] })).filter((s) => s.where.length > 0 && !/\?\?:/.test(s.where[0]!));
}

/** The section appended to a report: one line per frame, inlined callers indented. */
export function symbolizedSection(frames: readonly SymbolizedFrame[], source: string): string {
  if (frames.length === 0) return '';
  const lines = [`--- source lines (${source}; built-in code only) ---`];
  for (const f of frames) {
    lines.push(`${f.frame}: ${f.where[0]!}`);
    for (const w of f.where.slice(1)) lines.push(`    ${w}`);
  }
  return lines.join('\n');
}
