/**
 * Symbolizing kernel output: the raw addresses a kernel without kallsyms
 * prints (`0xffffffff8123abcd` in frames, RIP lines and WARNING/KASAN
 * headers) become `func+0xoff/0xsize` from a System.map, and, when a line
 * resolver is given (addr2line on a vmlinux with debug info), every stack
 * frame and RIP line gains `file:line`, with the functions inlined at that
 * point as their own `func file:line [inline]` lines before it - the form
 * kernel developers read in decoded reports, and the form parse.ts already
 * knows, so titles name the function that really went wrong.
 *
 * Pure: the symbol table is parsed from text and the line resolver is
 * injected (infra/kernels/symbols.ts runs addr2line).
 */

export interface KernelSymbol {
  name: string;
  addr: bigint;
  /** Distance to the next text symbol (System.map carries no sizes). */
  size: bigint;
}

/** Text symbols of a System.map or `nm -n` listing, sorted by address. */
export class SymbolTable {
  private readonly byName = new Map<string, KernelSymbol[]>();

  private constructor(readonly symbols: readonly KernelSymbol[]) {
    for (const s of symbols) {
      const list = this.byName.get(s.name) ?? [];
      list.push(s);
      this.byName.set(s.name, list);
    }
  }

  /** Lines `ffffffff81000000 T _text`; text symbols (t, T, w, W) are kept, the others only end them. */
  static parse(text: string): SymbolTable {
    const raw: { name: string; addr: bigint; text: boolean }[] = [];
    for (const line of text.split('\n')) {
      const m = /^([0-9a-fA-F]{8,16})\s+([a-zA-Z])\s+(\S+)/.exec(line);
      if (!m) continue;
      const addr = BigInt(`0x${m[1]}`);
      if (addr === 0n || /^[aAuUN]$/.test(m[2]!)) continue;
      raw.push({ name: m[3]!, addr, text: /^[tTwW]$/.test(m[2]!) });
    }
    raw.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
    const syms: KernelSymbol[] = [];
    raw.forEach((s, i) => {
      if (!s.text) return;
      // The next symbol (of any kind) at a higher address ends this one; the last gets a page.
      let j = i + 1;
      while (j < raw.length && raw[j]!.addr === s.addr) j++;
      syms.push({ name: s.name, addr: s.addr, size: j < raw.length ? raw[j]!.addr - s.addr : 0x1000n });
    });
    return new SymbolTable(syms);
  }

  get size(): number {
    return this.symbols.length;
  }

  /** The symbol containing addr, and the offset into it. */
  lookup(addr: bigint): { sym: KernelSymbol; offset: bigint } | undefined {
    const s = this.symbols;
    let lo = 0;
    let hi = s.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid]!.addr <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    // Several names at one address: the last one listed is the function (aliases come first in nm -n).
    const sym = s[found]!;
    const offset = addr - sym.addr;
    return offset < sym.size ? { sym, offset } : undefined;
  }

  /** The address of `name` whose size best matches `size` (static functions share names). */
  addressOf(name: string, size?: bigint): bigint | undefined {
    const list = this.byName.get(name);
    if (!list?.length) return undefined;
    if (size === undefined || list.length === 1) return list[0]!.addr;
    const exact = list.find((s) => s.size === size);
    if (exact) return exact.addr;
    // Padding makes next-symbol distances a little larger than the real size.
    const fits = list.filter((s) => s.size >= size).sort((a, b) => (a.size < b.size ? -1 : 1));
    return (fits[0] ?? list[0]!).addr;
  }
}

/** One frame of addr2line -i output: the function and where, innermost first. */
export interface SourceLine {
  func: string;
  /** Path inside the kernel tree (build-directory prefix removed). */
  file: string;
  line: number;
}

/** Resolve addresses to source lines (innermost inline first); absent: unknown. */
export type LineResolver = (addrs: readonly bigint[]) => Promise<Map<bigint, SourceLine[]>>;

export interface SymbolizeOptions {
  symbols?: SymbolTable;
  lines?: LineResolver;
  /**
   * KASLR offset to subtract from raw addresses before looking them up
   * (default: the log's own "Kernel Offset: 0x... from 0x..." line, else 0).
   */
  kaslrOffset?: bigint;
}

const RAW_ADDR = /(?<![\w])0x(ffffffff[0-9a-f]{8})(?![\w])/g;
const KERNEL_OFFSET = /Kernel Offset: 0x([0-9a-f]+) from 0x/;
/** A frame (after the line's prefix): indentation, optional `[<addr>]` and `? `, func+off/size, optional [module]. */
const FRAME_LINE = /^\s*(?:\[<[0-9a-f]+>\]\s*)?(?<unrel>\?\s+)?(?<func>[A-Za-z_$][\w.$]*)\+0x(?<off>[0-9a-f]+)\/0x(?<size>[0-9a-f]+)(?<mod>\s+\[[\w-]+(?:\s+[0-9a-f]+)?\])?\s*$/;
const RIP_LINE = /(?:RIP: (?:[0-9a-f]{4}:)?|pc : )(?<func>[A-Za-z_][\w.]*)\+0x(?<off>[0-9a-f]+)\/0x(?<size>[0-9a-f]+)(?<mod>\s+\[[\w-]+\])?\s*$/;

function hex(n: bigint): string {
  return `0x${n.toString(16)}`;
}

/** The message prefix of a line (timestamp, kmsg header) for lines we add after it. */
function prefixOf(line: string): string {
  const kmsg = /^\d+,\d+,\d+,[^;]*;/.exec(line);
  if (kmsg) return kmsg[0];
  const stamp = /^(?:<\d+>)?\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])?/.exec(line);
  return stamp ? stamp[0] : '';
}

/** A stack frame printed without kallsyms: `0xffffffff...` alone (after `[<...>]` and `? `). */
const RAW_FRAME_LINE = /^\s*(?:\[<[0-9a-f]+>\]\s*)?(?:\?\s+)?0xffffffff[0-9a-f]{8}\s*$/;

/**
 * Replace raw kernel text addresses by func+off/size. A stack frame holds a
 * return address, which for a call to a noreturn function (panic, BUG) is
 * already the next function's first byte: like the kernel's %pB, such
 * addresses are looked up one byte earlier and printed with the offset plus one.
 */
export function symbolizeAddresses(line: string, symbols: SymbolTable, kaslr = 0n, returnAddress = false): string {
  const back = returnAddress ? 1n : 0n;
  return line.replace(RAW_ADDR, (whole, h: string) => {
    const hit = symbols.lookup(BigInt(`0x${h}`) - kaslr - back);
    return hit ? `${hit.sym.name}+${hex(hit.offset + back)}/${hex(hit.sym.size)}` : whole;
  });
}

interface PendingFrame {
  index: number;
  /** A RIP line: one location, the innermost (where the CPU was). */
  rip: boolean;
  addr: bigint;
  /** Stack frames hold return addresses: the call is the byte before. */
  returnAddress: boolean;
  inline: boolean;
}

/**
 * Symbolize a log (console text or kmsg records, one per array element or
 * newline-separated). Lines that need nothing are returned unchanged.
 */
export async function symbolizeLog(input: string | readonly string[], opts: SymbolizeOptions): Promise<string[]> {
  const lines = typeof input === 'string' ? input.split('\n') : input.flatMap((l) => l.split('\n'));
  let kaslr = opts.kaslrOffset;
  if (kaslr === undefined) {
    const m = lines.map((l) => KERNEL_OFFSET.exec(l)).find(Boolean);
    kaslr = m ? BigInt(`0x${m[1]}`) : 0n;
  }
  const symbols = opts.symbols;
  const out = symbols
    ? lines.map((l) => (l.includes('0xffffffff') ? symbolizeAddresses(l, symbols, kaslr, RAW_FRAME_LINE.test(l.slice(prefixOf(l).length))) : l))
    : [...lines];
  if (!opts.lines || !symbols) return out;

  const pending: PendingFrame[] = [];
  out.forEach((line, index) => {
    const rip = RIP_LINE.exec(line);
    if (rip?.groups && !rip.groups.mod) {
      const base = symbols.addressOf(rip.groups.func!, BigInt(`0x${rip.groups.size}`));
      if (base !== undefined) pending.push({ index, rip: true, addr: base + BigInt(`0x${rip.groups.off}`), returnAddress: false, inline: false });
      return;
    }
    const f = FRAME_LINE.exec(line.slice(prefixOf(line).length));
    // Module frames need the module's own debug info; lines already decoded (file:line) do not match.
    if (!f?.groups || f.groups.mod) return;
    const base = symbols.addressOf(f.groups.func!, BigInt(`0x${f.groups.size}`));
    if (base === undefined) return;
    const off = BigInt(`0x${f.groups.off}`);
    pending.push({ index, rip: false, addr: base + off, returnAddress: off > 0n, inline: !f.groups.unrel });
  });
  if (pending.length === 0) return out;
  const query = [...new Set(pending.map((p) => (p.returnAddress ? p.addr - 1n : p.addr)))];
  const resolved = await opts.lines(query);
  const extra = new Map<number, string[]>();
  for (const p of pending) {
    const src = resolved.get(p.returnAddress ? p.addr - 1n : p.addr);
    if (!src?.length) continue;
    const at = p.rip ? src[0]! : src[src.length - 1]!;
    const line = out[p.index]!;
    out[p.index] = `${line.trimEnd()} ${at.file}:${at.line}`;
    if (p.inline && src.length > 1) {
      const prefix = prefixOf(line);
      const indent = /^\s*/.exec(line.slice(prefix.length))?.[0] ?? ' ';
      extra.set(p.index, src.slice(0, -1).map((s) => `${prefix}${indent}${s.func} ${s.file}:${s.line} [inline]`));
    }
  }
  return out.flatMap((l, i) => [...(extra.get(i) ?? []), l]);
}

/** Kernel-tree top-level directories: where a build path's tree-relative part starts. */
const TREE_DIRS = 'arch|block|certs|crypto|drivers|fs|include|init|io_uring|ipc|kernel|lib|mm|net|rust|samples|security|sound|virt';
const TREE_PATH = new RegExp(`^(?:.*?/)?((?:${TREE_DIRS})/.*)$`);

/** A path as addr2line prints it, made relative to the kernel tree. */
export function treeRelative(file: string): string {
  const noDisc = file.replace(/\s*\(discriminator \d+\)$/, '');
  const m = TREE_PATH.exec(noDisc);
  return m ? m[1]! : noDisc;
}

/**
 * Parse `addr2line -f -i -a` output: each address line (0x...) followed by
 * pairs of function and file:line lines, innermost first.
 */
export function parseAddr2line(text: string): Map<bigint, SourceLine[]> {
  const out = new Map<bigint, SourceLine[]>();
  let cur: SourceLine[] | undefined;
  let func: string | undefined;
  for (const line of text.split('\n')) {
    if (/^0x[0-9a-f]+$/.test(line)) {
      cur = [];
      out.set(BigInt(line), cur);
      func = undefined;
      continue;
    }
    if (!cur) continue;
    if (func === undefined) {
      func = line.trim();
      continue;
    }
    const m = /^(.*):(\d+)(?:\s*\(discriminator \d+\))?$/.exec(line.trim());
    if (m && func !== '??' && m[1] !== '??' && Number(m[2]) > 0) cur.push({ func, file: treeRelative(m[1]!), line: Number(m[2]) });
    func = undefined;
  }
  return out;
}
