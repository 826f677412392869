/**
 * A read or write whose buffer is a shared mapping of a file that reaches
 * past that file's EOF. A page of the mapping past the EOF page faults
 * (SIGBUS for a user access; the kernel's copy turns it into EFAULT), so the
 * op stops at the last mapped page: a short count, or EFAULT when nothing is
 * left. Bytes a read puts past EOF are not the file's (a later extension
 * zeroes them). With a racing thread that extends the buffer file, which of
 * these happens depends on the order, and the model's prediction (threads in
 * program order) must pass its own judge.
 */
import { describe, expect, it } from 'vitest';
import { PAGE, allows, divergences, err, fileCase, judge, observe, ok, resultOf, runs, withFinal, withResult, write, read } from '../helpers/cases.ts';

const mapG = (offset: number, align = 0) => ({ buffer: { placement: 'mmap', file: 'g', offset, align } });
const mapF = (offset: number, align = 0) => ({ buffer: { placement: 'mmap', file: 'f', offset, align } });

describe('a buffer mapping past the EOF page of its file, one thread', () => {
  it('a read whose buffer has no mapped page fails with EFAULT: no success, no count of 0', () => {
    // g is one page long; the buffer starts at g's page 2.
    const b = fileCase('ext4', [write(1, 'f', 0, PAGE), write(2, 'g', 0, PAGE), read(3, 'f', 0, PAGE, mapG(2 * PAGE))], { extraFiles: 1 });
    const obs = observe(b);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: -1, errno: 'EFAULT' });
    expect(judge(b, obs).verdict).toBe('pass');
    expect(allows(b, 3, ok(PAGE, runs(0, [PAGE, 1])))).toBe(false);
    expect(allows(b, 3, ok(0))).toBe(false);
  });

  it('a read at EOF returns 0 without touching its buffer, however far past the mapped pages it is', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, PAGE), write(2, 'g', 0, PAGE), read(3, 'f', PAGE, PAGE, mapG(4 * PAGE))], { extraFiles: 1 });
    const obs = observe(b);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 0 });
    expect(judge(b, obs).verdict).toBe('pass');
    expect(allows(b, 3, ok(PAGE, runs(0, [PAGE, 'zero'])))).toBe(false);
  });

  it('a read into a buffer that leaves the mapped pages stops at their end', () => {
    // g is 5000 bytes: its mapping reaches 8192. The buffer is [4096+1000, 4096+1000+8192).
    const b = fileCase('ext4', [write(1, 'f', 0, 2 * PAGE), write(2, 'g', 0, 5000), read(3, 'f', 0, 2 * PAGE, mapG(PAGE, 1000))], { extraFiles: 1 });
    const obs = observe(b);
    const most = 2 * PAGE - (PAGE + 1000);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: most, data: runs(0, [most, 1]) });
    expect(judge(b, obs).verdict).toBe('pass');
    expect(allows(b, 3, ok(2 * PAGE, runs(0, [2 * PAGE, 1])))).toBe(false);
    expect(allows(b, 3, ok(most + 512, runs(0, [most + 512, 1])))).toBe(false);
    expect(allows(b, 3, ok(512, runs(0, [512, 1])))).toBe(true);
    expect(allows(b, 3, err('EFAULT'))).toBe(true);
    // The whole buffer is past g's EOF (5000), in its EOF page: nothing of it is g's.
    expect(obs.final.g).toEqual({ size: 5000, extents: runs(0, [5000, 2]) });
  });

  it('a write from a buffer with no mapped page fails with EFAULT', () => {
    const b = fileCase('ext4', [write(1, 'g', 0, PAGE), write(2, 'f', 0, PAGE, mapG(2 * PAGE))], { extraFiles: 1 });
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: -1, errno: 'EFAULT' });
    expect(judge(b, obs).verdict).toBe('pass');
    expect(allows(b, 2, ok(PAGE))).toBe(false);
  });
});

describe('a read into a mapping of a file another thread extends (found by generated cases)', () => {
  // Reduced from generated case 1993 of seed 146760308 (btrfs, O_DIRECT, io_uring): thread 0 reads
  // f's first page into a mapping of f at 8192 while f is one page long; thread 1 extends f to 20480.
  const racing = () =>
    fileCase('ext4', [
      [write(1, 'f', 0, PAGE), read(2, 'f', 0, PAGE, mapF(2 * PAGE))],
      [write(3, 'f', 4 * PAGE, PAGE)],
    ]);
  const landed = runs(0, [PAGE, 1], [PAGE, 'zero'], [PAGE, { op: 1, delta: -2 * PAGE }], [PAGE, 'zero'], [PAGE, 3]);
  const notLanded = runs(0, [PAGE, 1], [3 * PAGE, 'zero'], [PAGE, 3]);

  it('the prediction (thread 0 first: the read faults) passes its own judge', () => {
    const b = racing();
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: -1, errno: 'EFAULT' });
    expect(obs.final.f).toEqual({ size: 5 * PAGE, extents: notLanded });
    expect(judge(b, obs).verdict).toBe('pass');
  });

  it('the read succeeded (thread 1 came first): its data must be in f at 8192', () => {
    const b = racing();
    const done = withResult(observe(b), 2, ok(PAGE, runs(0, [PAGE, 1])));
    expect(divergences(b, withFinal(done, 'f', 5 * PAGE, landed))).toEqual([]);
    const lost = divergences(b, withFinal(done, 'f', 5 * PAGE, notLanded));
    expect(lost.map((d) => [d.class, d.offset])).toEqual([['final-content', 2 * PAGE]]);
  });

  it('the read faulted: nothing of it may be in f', () => {
    const b = racing();
    const d = divergences(b, withFinal(observe(b), 'f', 5 * PAGE, landed));
    expect(d.map((x) => [x.class, x.offset])).toEqual([['final-content', 2 * PAGE]]);
  });

  it('bytes a read put between EOF and the end of its page: lost, or kept when the other thread extended first', () => {
    // f is 5000 bytes in thread 0; its buffer is f's [5096, 8192): past f's EOF, in its EOF page.
    const b = fileCase('ext4', [
      [write(1, 'f', 0, 5000), read(2, 'f', 0, PAGE, mapF(PAGE, 1000))],
      [write(3, 'f', 4 * PAGE, PAGE)],
    ]);
    const obs = observe(b);
    const most = 2 * PAGE - (PAGE + 1000);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: most, data: runs(0, [most, 1]) });
    expect(judge(b, obs).verdict).toBe('pass');
    const kept = runs(0, [5000, 1], [96, 'zero'], [most, { op: 1, delta: -(PAGE + 1000) }], [2 * PAGE, 'zero'], [PAGE, 3]);
    expect(divergences(b, withFinal(obs, 'f', 5 * PAGE, kept))).toEqual([]);
    // Never a third op's data there, nor data of op 1 from elsewhere.
    const wrong = runs(0, [5000, 1], [96, 'zero'], [most, 3], [2 * PAGE, 'zero'], [PAGE, 3]);
    expect(divergences(b, withFinal(obs, 'f', 5 * PAGE, wrong)).map((d) => d.class)).toEqual(['final-content']);
  });
});
