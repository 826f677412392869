/**
 * Shared file mappings: mmap-write, mmap-read and msync. mmap(2): an access
 * to a page past the one that holds EOF raises SIGBUS; the rest of the page
 * that holds EOF reads as zeroes when mapped, and stores there are "not
 * written out to the file". POSIX: bytes a size increase exposes read as
 * zeroes.
 */
import { describe, expect, it } from 'vitest';
import { PAGE, allows, fileCase, judge, observe, ok, op, opDivergences, read, resultOf, runs, truncate, withResult, write } from '../helpers/cases.ts';

const mw = (id: number, offset: number, length: number) => op('mmap-write', id, { target: 'f', offset, length });
const mr = (id: number, offset: number, length: number) => op('mmap-read', id, { target: 'f', offset, length });
const sigbus = { ret: -1, signal: 'SIGBUS' as const };

describe('mmap-write and mmap-read', () => {
  it('a store through the mapping is what read() and a load then see', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 2 * PAGE), mw(2, 1000, 3000), read(3, 'f', 0, 2 * PAGE), mr(4, 0, 2 * PAGE)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 3000 });
    const want = runs(0, [1000, 1], [3000, 2], [2 * PAGE - 4000, 1]);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 2 * PAGE, data: want });
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 2 * PAGE, data: want });
    expect(obs.final.f).toEqual({ size: 2 * PAGE, extents: want });
    expect(judge(b, obs).verdict).toBe('pass');
  });

  it('a load sees what write() wrote (one page cache)', () => {
    const b = fileCase('xfs', [write(1, 'f', 0, PAGE), mr(2, 0, PAGE)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: PAGE, data: runs(0, [PAGE, 1]) });
    expect(allows(b, 2, ok(PAGE, runs(0, [PAGE, 'zero'])), obs)).toBe(false);
  });

  it('an access past the page that holds EOF raises SIGBUS, and must', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 1000), mw(2, PAGE, 10), mr(3, PAGE + 100, 10), mr(4, 0, 2 * PAGE)]);
    const obs = observe(b);
    for (const id of [2, 3, 4]) {
      expect(resultOf(obs, id)).toEqual({ op: id, ...sigbus });
      expect(opDivergences(b, withResult(obs, id, ok(id === 4 ? 2 * PAGE : 10)), id)[0], `op ${id}`).toMatchObject({ class: 'missing-signal' });
    }
  });

  it('an empty file has no page to map: any access raises SIGBUS', () => {
    const b = fileCase('ext4', [mw(1, 0, 1)]);
    expect(resultOf(observe(b), 1)).toEqual({ op: 1, ...sigbus });
  });

  it('inside the page that holds EOF there is no SIGBUS, and past EOF a load reads zeroes', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 1000), mr(2, 900, 200)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 200, data: runs(0, [100, 1], [100, 'zero']) });
    expect(allows(b, 2, sigbus, obs)).toBe(false);
    expect(allows(b, 2, ok(200, runs(0, [200, 1])), obs)).toBe(false);
  });

  it('stores past EOF in the last page are not written to the file', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 1000), mw(2, 900, 200), read(3, 'f', 0, PAGE)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 200 });
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 1000, data: runs(0, [900, 1], [100, 2]) });
    expect(obs.final.f).toEqual({ size: 1000, extents: runs(0, [900, 1], [100, 2]) });
  });

  it('but a load through the mapping may still see them (zeroes, or the store, there)', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 1000), mw(2, 900, 200), mr(3, 900, 200)]);
    const obs = observe(b);
    expect(allows(b, 3, ok(200, runs(0, [200, 2])), obs)).toBe(true);
    expect(allows(b, 3, ok(200, runs(0, [100, 2], [100, 'zero'])), obs)).toBe(true);
    expect(allows(b, 3, ok(200, runs(0, [100, 2], [100, 1])), obs)).toBe(false);
    expect(allows(b, 3, ok(200, runs(0, [100, 'zero'], [100, 2])), obs)).toBe(false);
  });

  it('when the file grows, the bytes it exposes are zeroes, not what was stored past the old EOF', () => {
    for (const grow of [write(3, 'f', 2000, 10), truncate(3, 'f', 3000), op('fallocate', 3, { target: 'f', mode: 'allocate', offset: 0, length: 3000 })]) {
      const b = fileCase('ext4', [write(1, 'f', 0, 1000), mw(2, 900, 200), grow, read(4, 'f', 900, 200), mr(5, 900, 200)]);
      const obs = observe(b);
      const want = runs(0, [100, 2], [100, 'zero']);
      expect(resultOf(obs, 4), grow.kind).toEqual({ op: 4, ret: 200, data: want });
      expect(allows(b, 4, ok(200, runs(0, [200, 2])), obs), grow.kind).toBe(false);
      expect(allows(b, 5, ok(200, runs(0, [200, 2])), obs), grow.kind).toBe(false);
    }
  });

  it('a store that raises SIGBUS part-way may have stored the pages before the fault', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, PAGE), mw(2, 0, 2 * PAGE), read(3, 'f', 0, PAGE)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ...sigbus });
    expect(allows(b, 3, ok(PAGE, runs(0, [PAGE, 1])), obs)).toBe(true);
    expect(allows(b, 3, ok(PAGE, runs(0, [PAGE, 2])), obs)).toBe(true);
    expect(allows(b, 3, ok(PAGE, runs(0, [PAGE, 'zero'])), obs)).toBe(false);
  });

  it('truncate down then up: the mapping and read() both see zeroes past the cut', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 2 * PAGE), truncate(2, 'f', 1000), truncate(3, 'f', 2 * PAGE), mr(4, 0, 2 * PAGE), read(5, 'f', 0, 2 * PAGE)]);
    const obs = observe(b);
    const want = runs(0, [1000, 1], [2 * PAGE - 1000, 'zero']);
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 2 * PAGE, data: want });
    expect(resultOf(obs, 5)).toEqual({ op: 5, ret: 2 * PAGE, data: want });
    expect(allows(b, 5, ok(2 * PAGE, runs(0, [2 * PAGE, 1])), obs)).toBe(false);
  });
});

describe('msync', () => {
  for (const mode of ['sync', 'async', 'invalidate'] as const)
    it(`${mode}: succeeds and changes no data`, () => {
      const b = fileCase('xfs', [write(1, 'f', 0, PAGE), mw(2, 0, 100), op('msync', 3, { target: 'f', mode }), read(4, 'f', 0, PAGE)]);
      const obs = observe(b);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 0 });
      expect(allows(b, 3, { ret: -1, errno: 'EIO' }, obs)).toBe(false);
      expect(resultOf(obs, 4)).toEqual({ op: 4, ret: PAGE, data: runs(0, [100, 2], [PAGE - 100, 1]) });
    });
});
