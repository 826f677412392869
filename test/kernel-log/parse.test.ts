/**
 * Unit tests of the kernel-log engine: input formats, frames and skipping,
 * scrubbing, title templates, report extents, bursts, and that the engine is
 * driven by the table alone.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BURST_GAP, COMMON_SKIP, FORMATS, type ReportFormat } from '../../worker/kernel-log/formats.ts';
import {
  consoleToCrash,
  fillTemplate,
  firstCrash,
  isSkipped,
  isTraceLine,
  logLines,
  normalizeFunction,
  parseFrame,
  parseKernelLog,
  scrubTitle,
  stripPrefix,
} from '../../worker/kernel-log/parse.ts';

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), '../../worker/kernel-log/testdata');

/** A small 6.x WARNING with the given pid, addresses and offset, as plain lines. */
function warning(opts: { pid?: number; off?: string; rsp?: string; dev?: string } = {}): string[] {
  const pid = opts.pid ?? 1208;
  const off = opts.off ?? '0x10c/0x130';
  return [
    '------------[ cut here ]------------',
    `WARNING: CPU: 0 PID: ${pid} at drivers/block/loop.c:211 loop_update_dio+${off} [loop]`,
    'Modules linked in: loop',
    `CPU: 0 PID: ${pid} Comm: blockfarm-exec Not tainted 6.1.0-21-amd64 #1`,
    `RIP: 0010:loop_update_dio+${off} [loop]`,
    `RSP: 0018:${opts.rsp ?? 'ffffb3c1c0a4fd38'} EFLAGS: 00010202`,
    'Call Trace:',
    ' <TASK>',
    ' ? __warn+0x7d/0xc0',
    ` ? loop_update_dio+${off} [loop]`,
    ' lo_simple_ioctl+0x1b6/0x2b0 [loop]',
    ' blkdev_ioctl+0x112/0x270',
    ' </TASK>',
    '---[ end trace 0000000000000000 ]---',
  ];
}

describe('input lines', () => {
  it('strips console, caller, level, dmesg -T and syslog prefixes', () => {
    expect(stripPrefix('[   12.345678] WARNING: CPU: 0 PID: 1 at x')).toBe('WARNING: CPU: 0 PID: 1 at x');
    expect(stripPrefix('[   12.345678]  dump_stack_lvl+0x44/0x5c')).toBe(' dump_stack_lvl+0x44/0x5c');
    expect(stripPrefix('[ 1402.883310][   T31] INFO: task x:1 blocked')).toBe('INFO: task x:1 blocked');
    expect(stripPrefix('<4>[   73.510033] Oops: 0000 [#1] SMP PTI')).toBe('Oops: 0000 [#1] SMP PTI');
    expect(stripPrefix('[Tue Jun  4 12:00:01 2024] loop0: detected capacity change')).toBe('loop0: detected capacity change');
    expect(stripPrefix('Jun  4 12:00:01 guest kernel: [  3.2] md: md127 stopped.')).toBe('md: md127 stopped.');
    expect(stripPrefix('2024-06-04T12:00:01.123456+00:00 guest kernel: loop: module loaded')).toBe('loop: module loaded');
    expect(stripPrefix('\x1b[0m[    1.000000] x\r')).toBe('x');
    expect(stripPrefix('plain message')).toBe('plain message');
  });

  it('reads /dev/kmsg records, decodes escapes into lines and drops dictionary lines', () => {
    const lines = logLines([
      '6,1234,5678901,-;loop0: detected capacity change from 0 to 8',
      ' SUBSYSTEM=block',
      ' DEVICE=b7:0',
      '4,1235,5678950,-,caller=T12;first\\x0asecond',
      '4,1236,5678990,c; dump_stack_lvl+0x44/0x5c',
    ].join('\n'));
    expect(lines).toEqual([
      { n: 1, msg: 'loop0: detected capacity change from 0 to 8' },
      { n: 4, msg: 'first' },
      { n: 4, msg: 'second' },
      { n: 5, msg: ' dump_stack_lvl+0x44/0x5c' },
    ]);
  });

  it('keeps frame lines that follow console lines (only kmsg records have dictionaries)', () => {
    expect(logLines('[ 1.0] Call Trace:\n SUBSYSTEM=block').map((l) => l.msg)).toEqual(['Call Trace:', ' SUBSYSTEM=block']);
  });

  it('finds the same report in console, kmsg and plain form', () => {
    const plain = warning();
    const console = plain.map((l, i) => `[  812.${String(300000 + i).padStart(6, '0')}] ${l}`);
    const kmsg = plain.map((l, i) => `4,${900 + i},${812300000 + i},-;${l}`);
    const titles = [plain, console, kmsg].map((ls) => parseKernelLog(ls.join('\n')).map((r) => [r.title, r.lines.length]));
    expect(titles[0]).toEqual([['WARNING in loop_update_dio', plain.length]]);
    expect(titles[1]).toEqual(titles[0]);
    expect(titles[2]).toEqual(titles[0]);
  });

  it('accepts an array of lines as well as text', () => {
    expect(parseKernelLog(warning())[0]?.title).toBe('WARNING in loop_update_dio');
  });

  it('plain mode does not strip prefixes', () => {
    expect(logLines('[ 1.0] x', { plain: true })[0]?.msg).toBe('[ 1.0] x');
  });
});

describe('frames', () => {
  it('parses the frame syntaxes', () => {
    expect(parseFrame(' lo_rw_aio+0x1a/0x2b [loop]')).toEqual({ func: 'lo_rw_aio', unreliable: false, module: 'loop' });
    expect(parseFrame(' ? __warn+0x7d/0xc0')).toEqual({ func: '__warn', unreliable: true });
    expect(parseFrame(' dm_suspend+0x2b/0x1f0 [dm_mod 5a1f0c93d7e2b4a86c1e09f3b7d25a4e8c6f1b02]')).toEqual({
      func: 'dm_suspend',
      unreliable: false,
      module: 'dm_mod',
    });
    expect(parseFrame(' [<ffffffff81234567>] bio_endio+0x2a/0x1f0')).toEqual({ func: 'bio_endio', unreliable: false });
    expect(parseFrame('       __mutex_lock+0x97/0xd10')).toEqual({ func: '__mutex_lock', unreliable: false });
    expect(parseFrame(' dm_integrity_ctr.cold+0x2c/0x31 [dm_integrity]')?.func).toBe('dm_integrity_ctr');
    expect(parseFrame(' loop_configure+0x1e5/0x7a0 drivers/block/loop.c:1050')?.func).toBe('loop_configure');
    expect(parseFrame(' bio_advance_iter include/linux/bio.h:112 [inline]')?.func).toBe('bio_advance_iter');
    expect(parseFrame('WARNING: CPU: 0 PID: 1 at x')).toBeUndefined();
    expect(parseFrame('RIP: 0010:bio_split+0xd4/0xe0')).toBeUndefined();
  });

  it('normalizes compiler suffixes and offsets', () => {
    expect(normalizeFunction('mark_lock.part.0')).toBe('mark_lock');
    expect(normalizeFunction('xfs_dinode_verify.part.0+0x1d8/0x870')).toBe('xfs_dinode_verify');
    expect(normalizeFunction('crc32c.isra.3')).toBe('crc32c');
    expect(normalizeFunction('foo.constprop.0.cold')).toBe('foo');
  });

  it('classifies trace lines', () => {
    for (const l of [' <TASK>', ' </IRQ>', 'RIP: 0033:0x7f3b8d8f2e77', 'R13: 0 R14: 0 R15: 0', 'Code: 48 8b <0f> 0b', ' ? 0xffffffffc0a1b2c3', 'x29: ffff80000a1d3d40 x28: 0', 'pc : loop_process_work+0x5c/0x4d0 [loop]']) {
      expect(isTraceLine(l), l).toBe(true);
    }
    for (const l of ['Modules linked in: loop', 'Allocated by task 3402:', '']) expect(isTraceLine(l), l).toBe(false);
  });

  it('skips by glob', () => {
    expect(isSkipped('_raw_spin_lock_irqsave', COMMON_SKIP)).toBe(true);
    expect(isSkipped('asm_exc_invalid_op', COMMON_SKIP)).toBe(true);
    expect(isSkipped('entry_SYSCALL_64_after_hwframe', COMMON_SKIP)).toBe(true);
    expect(isSkipped('kasan_report', COMMON_SKIP)).toBe(true);
    expect(isSkipped('dm_submit_bio', COMMON_SKIP)).toBe(false);
    expect(isSkipped('mutex_lock_nested', ['mutex_lock*'])).toBe(true);
    expect(isSkipped('a.b', ['a*b'])).toBe(true);
    expect(isSkipped('axb', ['a.b'])).toBe(false);
  });

  it('blames the first useful frame: skipped helpers and ? frames are passed over', () => {
    const log = [
      'WARNING: CPU: 0 PID: 1 at kernel/locking/mutex.c:582 __mutex_lock+0x5d/0xd10',
      'RIP: 0010:__mutex_lock+0x5d/0xd10',
      'Call Trace:',
      ' <TASK>',
      ' ? __warn+0x7d/0xc0',
      ' ? dm_table_destroy+0x2c4/0x3b0 [dm_mod]',
      ' mutex_lock_nested+0x1b/0x30',
      ' _raw_spin_lock+0x34/0x80',
      ' dm_swap_table+0x7a/0x2a0 [dm_mod]',
      ' dev_suspend+0x156/0x2a0 [dm_mod]',
      ' </TASK>',
    ];
    const [r] = parseKernelLog(log);
    expect(r?.guilty).toBe('dm_swap_table');
    expect(r?.title).toBe('WARNING in dm_swap_table');
  });

  it('omits the function when every frame is generic', () => {
    const [r] = parseKernelLog(['WARNING: CPU: 0 PID: 1 at kernel/panic.c:1 0xffffffffc0123456', 'Call Trace:', ' <TASK>', ' kthread+0xda/0x100', ' ret_from_fork+0x22/0x30', ' </TASK>']);
    expect(r?.title).toBe('WARNING');
    expect(r?.guilty).toBeUndefined();
  });
});

describe('scrubbing', () => {
  it('replaces addresses, numbers and device instances', () => {
    expect(scrubTitle('unknown-block(254,1)')).toBe('unknown-block(NUM,NUM)');
    expect(scrubTitle('loop12p1 dm-3 md127 sdb2 vdc nvme0n1p2 nbd7 zram0')).toBe('loopN dm-N mdN sdX vdX nvmeNnN nbdN zramN');
    expect(scrubTitle('address 0xffff88810b3c9a10 flags 0x80')).toBe('address ADDR flags NUM');
    expect(scrubTitle('inode 00000000b7c2a1f4 at 12345678')).toBe('inode ADDR at NUM');
    expect(scrubTitle('fio/3391 on CPU#1')).toBe('fio/NUM on CPU#NUM');
    expect(scrubTitle('in bio_endio+0x2a/0x1f0 [dm_mod]')).toBe('in bio_endio');
    expect(scrubTitle('ext4_evict_inode x86_64 crc32c kmalloc-512')).toBe('ext4_evict_inode x86_64 crc32c kmalloc-NUM');
    expect(scrubTitle('drivers/md/dm.c:701')).toBe('drivers/md/dm.c:NUM');
  });

  it('fills templates with optional segments', () => {
    expect(fillTemplate('KASAN: {bugtype}[ {access}][ in {func}]', { bugtype: 'double-free', func: 'kfree_x' })).toBe('KASAN: double-free in kfree_x');
    expect(fillTemplate('WARNING[ in {func}]', {})).toBe('WARNING');
    expect(fillTemplate('[{subsys}: ]{what} not cleared', { what: 'i_reserved_data_blocks' })).toBe('i_reserved_data_blocks not cleared');
    expect(fillTemplate('{a} b', {})).toBe('? b');
  });

  it('gives the same bug with other addresses, pids, offsets and devices the same title', () => {
    const a = parseKernelLog(warning({ pid: 1208, off: '0x10c/0x130', rsp: 'ffffb3c1c0a4fd38' }));
    const b = parseKernelLog(warning({ pid: 77, off: '0x11c/0x140', rsp: 'ffffa0c2c0317e10' }));
    expect(a.map((r) => r.title)).toEqual(b.map((r) => r.title));
    const io = (dev: string, sector: number) => parseKernelLog([`I/O error, dev ${dev}, sector ${sector} op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2`]);
    expect(io('loop0', 2048)[0]?.title).toBe('I/O error on loopN');
    expect(io('loop7', 99)[0]?.title).toBe('I/O error on loopN');
  });
});

describe('report extents', () => {
  it('ends a report at the next header, and a trace report after its end-of-trace tail', () => {
    const log = [...warning(), 'RIP: 0010:loop_update_dio+0x10c/0x130 [loop]', 'unrelated line', ...warning({ pid: 9 })];
    const rs = parseKernelLog(log);
    expect(rs.map((r) => [r.firstLine, r.line, r.lastLine])).toEqual([
      [1, 2, 15],
      [17, 18, 30],
    ]);
    expect(rs[0]?.raw[0]).toBe('------------[ cut here ]------------');
  });

  it('ends a message report at a line that is not its body', () => {
    const rs = parseKernelLog([
      'Buffer I/O error on dev loop0, logical block 3, async page read',
      'buffer_io_error: 3 callbacks suppressed',
      'EXT4-fs (loop0): unmounting filesystem.',
    ]);
    expect(rs).toHaveLength(1);
    expect(rs[0]?.lastLine).toBe(2);
  });

  it('folds a burst, but not across another report or a long gap', () => {
    const err = (s: number) => `I/O error, dev loop0, sector ${s} op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2`;
    const noise = (n: number) => Array.from({ length: n }, (_, i) => `audit: type=1400 audit(0.${i}:1): noise`);
    expect(parseKernelLog([err(0), ...noise(3), err(8)]).map((r) => [r.firstLine, r.lastLine])).toEqual([[1, 5]]);
    expect(parseKernelLog([err(0), ...noise(BURST_GAP + 5), err(8)])).toHaveLength(2);
    expect(parseKernelLog([err(0), 'device-mapper: integrity: dm-0: Checksum failed at sector 0x8', err(8)]).map((r) => r.kind)).toEqual([
      'io-error',
      'integrity',
      'io-error',
    ]);
    expect(parseKernelLog([err(0), 'I/O error, dev loop1, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2'])).toHaveLength(1);
    expect(parseKernelLog([err(0), 'I/O error, dev sda, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2'])).toHaveLength(2);
  });

  it('absorbs the panic a report causes and becomes a crash', () => {
    const rs = parseKernelLog([
      ...warning(),
      'Kernel panic - not syncing: kernel: panic_on_warn set ...',
      'Call Trace:',
      ' <TASK>',
      ' panic+0x118/0x2ed',
      ' </TASK>',
      'Kernel Offset: disabled',
      '---[ end Kernel panic - not syncing: kernel: panic_on_warn set ... ]---',
    ]);
    expect(rs.map((r) => [r.title, r.crash, r.lines.length])).toEqual([['WARNING in loop_update_dio', true, warning().length + 7]]);
    expect(firstCrash(rs)?.title).toBe('WARNING in loop_update_dio');
  });

  it('caps a report whose trace never comes', () => {
    const rs = parseKernelLog(['WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2', ...Array.from({ length: 1000 }, (_, i) => `line ${i}`)]);
    expect(rs[0]?.lines.length).toBe(400);
  });

  it('finds nothing in an empty log', () => {
    expect(parseKernelLog('')).toEqual([]);
    expect(consoleToCrash('loop: module loaded\n')).toBeUndefined();
  });

  it('returns the first crash, not the first report', () => {
    const text = readFileSync(join(TESTDATA, '06.txt'), 'utf8');
    const log = text.slice(text.indexOf('\n\n') + 2);
    expect(parseKernelLog(log).map((r) => r.crash)).toEqual([false, true]);
    expect(consoleToCrash(log)?.title).toBe('BUG: kernel NULL pointer dereference in lo_rw_aio_complete');
  });
});

describe('the table drives the engine', () => {
  it('has unique ids and only named groups the titles can use', () => {
    const ids = FORMATS.map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const f of FORMATS) {
      if (f.burst) expect(f.guilty?.every((g) => g.from === 'header') ?? true, `${f.id}: burst titles must come from the header`).toBe(true);
      if (f.shape === 'message') expect(f.body, `${f.id}: message formats list their body lines`).toBeDefined();
      const vars = [...f.title.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const groups = [f.header, ...(f.captures ?? [])].flatMap((re) => [...re.source.matchAll(/\(\?<(\w+)>/g)].map((m) => m[1]));
      groups.push(...(f.classify ?? []).flatMap((r) => Object.keys(r.vars)));
      for (const v of vars) expect(v === 'func' || groups.includes(v), `${f.id}: {${v}} is not a named group`).toBe(true);
    }
  });

  it('every format is exercised by a golden file', () => {
    const seen = new Set<string>();
    for (const name of readdirSync(TESTDATA).filter((f) => f.endsWith('.txt'))) {
      const text = readFileSync(join(TESTDATA, name), 'utf8');
      for (const r of parseKernelLog(text.slice(text.indexOf('\n\n') + 2))) seen.add(r.format);
    }
    expect(FORMATS.map((f) => f.id).filter((id) => !seen.has(id))).toEqual([]);
  });

  it('a new format is one table entry', () => {
    const mine: ReportFormat = {
      id: 'nbd-timeout',
      kind: 'io-error',
      header: /^block (?<dev>nbd\d+): Possible stuck request /,
      title: 'nbd: stuck request on {dev}',
      crash: false,
      shape: 'message',
      body: [],
      burst: true,
    };
    const log = ['block nbd3: Possible stuck request 00000000a1b2c3d4: control (read@0,4096B). Runtime 30 seconds', 'block nbd3: Possible stuck request 00000000a1b2c3d4: control (read@0,4096B). Runtime 60 seconds'];
    expect(parseKernelLog(log)).toEqual([]);
    expect(parseKernelLog(log, { formats: [...FORMATS, mine] }).map((r) => [r.title, r.lastLine])).toEqual([['nbd: stuck request on nbdN', 2]]);
  });
});
