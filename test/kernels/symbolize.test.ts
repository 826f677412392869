/**
 * Symbolization: a recorded report with raw addresses (a kernel built without
 * kallsyms prints 0xffffffff... for every frame) against a System.map written
 * for this test; then file:line and inline frames from the real addr2line on
 * a small ELF compiled here with debug info.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KernelSymbolizer, loadKernelSymbols } from '../../worker/kernel-log/kernel-symbols.ts';
import { parseKernelLog } from '../../worker/kernel-log/parse.ts';
import { SymbolTable, parseAddr2line, symbolizeLog, treeRelative } from '../../worker/kernel-log/symbolize.ts';

const SYSTEM_MAP = `ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff8108a2c0 T __warn
ffffffff8108a3f0 t report_bug
ffffffff81134500 T evict
ffffffff811345d0 T dispose_list
ffffffff81134620 T evict_inodes
ffffffff81134790 T generic_shutdown_super
ffffffff81201000 t ext4_da_release_space
ffffffff812010a0 T ext4_evict_inode
ffffffff81201750 T ext4_truncate
ffffffff81301000 T blk_update_request
ffffffff81301200 t loop_process_work
ffffffff81301600 t loop_process_work
ffffffff81301700 T do_syscall_64
ffffffff81301780 T entry_SYSCALL_64_after_hwframe
ffffffff81400000 D _sdata
ffffffff81400040 d some_table
ffffffff81500000 T _etext
`;

/** A WARNING from a kernel without kallsyms: every address raw. */
const RAW_REPORT = `[   41.500101] ------------[ cut here ]------------
[   41.500120] WARNING: CPU: 0 PID: 77 at fs/ext4/inode.c:254 0xffffffff81201641
[   41.500131] CPU: 0 PID: 77 Comm: umount Not tainted 6.1.0-bf-tiny #1
[   41.500140] RIP: 0010:0xffffffff81201641
[   41.500150] RSP: 0018:ffffc9000024fd78 EFLAGS: 00010202
[   41.500158] RAX: 0000000000000001 RBX: ffff888002a4c000 RCX: 0000000000000000
[   41.500170] Call Trace:
[   41.500172]  <TASK>
[   41.500175]  ? 0xffffffff8108a31d
[   41.500180]  ? 0xffffffff81201641
[   41.500190]  0xffffffff811345b2
[   41.500195]  0xffffffff81134614
[   41.500200]  0xffffffff811346fc
[   41.500210]  0xffffffff8113480e
[   41.500220]  0xffffffff81301745
[   41.500230]  0xffffffff81301794
[   41.500240] RIP: 0033:0x7f3b8d8f2e77
[   41.500250]  </TASK>
[   41.500260] ---[ end trace 0000000000000000 ]---
[   41.500270] general protection fault, probably for non-canonical address 0xdffffc0000000002: 0000 [#1]`;

describe('System.map symbolization', () => {
  const table = SymbolTable.parse(SYSTEM_MAP);

  it('keeps text symbols only and sizes them by the next symbol', () => {
    expect(table.lookup(0xffffffff81201641n)).toEqual({ sym: { name: 'ext4_evict_inode', addr: 0xffffffff812010a0n, size: 0x6b0n }, offset: 0x5a1n });
    // Data symbols are not functions; an address past the last text symbol's extent is nothing.
    expect(table.lookup(0xffffffff81400050n)).toBeUndefined();
    expect(table.lookup(0xffffffff81600000n)).toBeUndefined();
    expect(table.lookup(0xffffffff80000000n)).toBeUndefined();
    // Two static functions of one name: the size picks the right one.
    expect(table.addressOf('loop_process_work', 0x100n)).toBe(0xffffffff81301600n);
    expect(table.addressOf('loop_process_work', 0x400n)).toBe(0xffffffff81301200n);
  });

  it('turns a raw report into the one kernel developers read, and the title names the function', async () => {
    expect(parseKernelLog(RAW_REPORT)[0]?.title).toBe('WARNING');
    const lines = await symbolizeLog(RAW_REPORT, { symbols: table });
    expect(lines[1]).toBe('[   41.500120] WARNING: CPU: 0 PID: 77 at fs/ext4/inode.c:254 ext4_evict_inode+0x5a1/0x6b0');
    expect(lines[3]).toBe('[   41.500140] RIP: 0010:ext4_evict_inode+0x5a1/0x6b0');
    expect(lines.slice(9, 16)).toEqual([
      '[   41.500180]  ? ext4_evict_inode+0x5a1/0x6b0',
      '[   41.500190]  evict+0xb2/0xd0',
      '[   41.500195]  dispose_list+0x44/0x50',
      '[   41.500200]  evict_inodes+0xdc/0x170',
      '[   41.500210]  generic_shutdown_super+0x7e/0xcc870',
      '[   41.500220]  do_syscall_64+0x45/0x80',
      '[   41.500230]  entry_SYSCALL_64_after_hwframe+0x14/0xfe880',
    ]);
    // User addresses and non-canonical addresses stay as they are.
    expect(lines[16]).toBe('[   41.500240] RIP: 0033:0x7f3b8d8f2e77');
    expect(lines[19]).toContain('0xdffffc0000000002');
    const reports = parseKernelLog(lines);
    expect(reports.map((r) => r.title)).toEqual(['WARNING in ext4_evict_inode', 'general protection fault']);
  });

  it('looks a frame up as a return address (a call to panic ends its function), a RIP as it is', async () => {
    const log = ['[    3.540000]  ? 0xffffffff812010a0', '[    3.540000] RIP: 0010:0xffffffff812010a0', '[    3.540000] WARNING: CPU: 0 PID: 1 at x.c:1 0xffffffff812010a0'];
    expect(await symbolizeLog(log, { symbols: table })).toEqual([
      '[    3.540000]  ? ext4_da_release_space+0xa0/0xa0',
      '[    3.540000] RIP: 0010:ext4_evict_inode+0x0/0x6b0',
      '[    3.540000] WARNING: CPU: 0 PID: 1 at x.c:1 ext4_evict_inode+0x0/0x6b0',
    ]);
  });

  it('applies the KASLR offset the log states', async () => {
    const shifted = `[    1.000000] RIP: 0010:0xffffffff9a201641\n[    1.100000] Kernel Offset: 0x19000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)`;
    expect((await symbolizeLog(shifted, { symbols: table }))[0]).toBe('[    1.000000] RIP: 0010:ext4_evict_inode+0x5a1/0x6b0');
  });
});

describe('file:line and inline frames from addr2line', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bf-sym-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses addr2line -f -i -a output and makes build paths tree-relative', () => {
    const out = parseAddr2line('0xffffffff81201641\nbio_advance_iter\n/build/linux-6.1.192/include/linux/bvec.h:142 (discriminator 3)\next4_evict_inode\n/build/linux-6.1.192/fs/ext4/inode.c:254\n0xffffffff81000010\n??\n??:0\n');
    expect(out.get(0xffffffff81201641n)).toEqual([
      { func: 'bio_advance_iter', file: 'include/linux/bvec.h', line: 142 },
      { func: 'ext4_evict_inode', file: 'fs/ext4/inode.c', line: 254 },
    ]);
    expect(out.get(0xffffffff81000010n)).toEqual([]);
    expect(treeRelative('/usr/src/linux/drivers/md/dm.c')).toBe('drivers/md/dm.c');
  });

  it('adds file:line to frames and RIP, and inlined functions as their own frames, with the real addr2line', async () => {
    // A kernel-shaped object: fs/demo.c with an always-inlined helper that faults.
    mkdirp(path.join(dir, 'fs'));
    const src = path.join(dir, 'fs', 'demo.c');
    writeFileSync(
      src,
      [
        'volatile int sink;',
        'static inline __attribute__((always_inline)) void demo_check(int *p) {',
        '  sink = *p;',
        '}',
        '__attribute__((noinline)) void demo_evict(int *p) {',
        '  demo_check(p);',
        '  sink++;',
        '}',
        '__attribute__((noinline)) void demo_caller(int *p) {',
        '  demo_evict(p);',
        '  sink += 2;',
        '}',
        '',
      ].join('\n'),
    );
    const elf = path.join(dir, 'vmlinux');
    execFileSync('gcc', ['-O2', '-g', '-fno-pie', '-no-pie', '-nostdlib', '-Wl,-e,demo_caller', '-Wl,-Ttext=0xffffffff81000000', '-o', elf, src], { cwd: dir });
    const nm = execFileSync('nm', ['-n', elf], { encoding: 'utf8' });
    writeFileSync(path.join(dir, 'System.map'), nm);
    const sym = await loadKernelSymbols({ systemMap: path.join(dir, 'System.map'), vmlinux: [elf] });
    expect(sym?.lines).toBeDefined();
    const evict = sym!.symbols!.addressOf('demo_evict')!;
    const caller = sym!.symbols!.addressOf('demo_caller')!;
    // The faulting load is demo_evict's first memory access (the inlined demo_check); the caller's frame is the return address after its call.
    const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', elf], { encoding: 'utf8' });
    const callerRet = returnAfterCall(dis, 'demo_caller');
    const loadAt = firstLoad(dis, 'demo_evict');
    const size = (a: bigint) => sym!.symbols!.lookup(a)!.sym.size;
    const log = [
      `[    5.000000] RIP: 0010:demo_evict+0x${(loadAt - evict).toString(16)}/0x${size(evict).toString(16)}`,
      '[    5.000010] Call Trace:',
      '[    5.000011]  <TASK>',
      `[    5.000012]  demo_evict+0x${(loadAt - evict).toString(16)}/0x${size(evict).toString(16)}`,
      `[    5.000013]  demo_caller+0x${(callerRet - caller).toString(16)}/0x${size(caller).toString(16)}`,
      '[    5.000014]  </TASK>',
    ];
    const s = new KernelSymbolizer({ systemMap: path.join(dir, 'System.map'), vmlinux: [elf] });
    const out = await s.symbolize(log);
    expect(out[0]).toMatch(/RIP: 0010:demo_evict\+0x[0-9a-f]+\/0x[0-9a-f]+ fs\/demo\.c:3$/);
    expect(out[3]).toBe('[    5.000012]  demo_check fs/demo.c:3 [inline]');
    expect(out[4]).toMatch(/^\[    5\.000012\]  demo_evict\+0x[0-9a-f]+\/0x[0-9a-f]+ fs\/demo\.c:6$/);
    expect(out[5]).toMatch(/^\[    5\.000013\]  demo_caller\+0x[0-9a-f]+\/0x[0-9a-f]+ fs\/demo\.c:10$/);
    // The parser reads decoded frames: the inlined function is the first real frame.
    const withHeader = ['[    4.999999] BUG: unable to handle page fault for address: 0000000000000010', ...out];
    expect(parseKernelLog(withHeader)[0]?.title).toBe('BUG: unable to handle page fault in demo_evict');
    expect(parseKernelLog(['[    4.999999] WARNING: CPU: 0 PID: 1 at fs/demo.c:3 demo_evict+0x4/0x20', ...out.slice(1)])[0]?.title).toBe('WARNING in demo_evict');
  });
});

function mkdirp(d: string): void {
  execFileSync('mkdir', ['-p', d]);
}

/** Address of the instruction after the first call in a function's disassembly. */
function returnAfterCall(dis: string, func: string): bigint {
  const body = functionBody(dis, func);
  const i = body.findIndex((l) => /\tcall/.test(l));
  return BigInt(`0x${/^\s*([0-9a-f]+):/.exec(body[i + 1]!)![1]}`);
}

function firstLoad(dis: string, func: string): bigint {
  const body = functionBody(dis, func);
  const l = body.find((x) => /mov\s+\(%r/.test(x))!;
  return BigInt(`0x${/^\s*([0-9a-f]+):/.exec(l)![1]}`);
}

function functionBody(dis: string, func: string): string[] {
  const lines = dis.split('\n');
  const start = lines.findIndex((l) => l.endsWith(`<${func}>:`));
  const out: string[] = [];
  for (let i = start + 1; i < lines.length && lines[i]!.trim() !== ''; i++) out.push(lines[i]!);
  return out;
}
