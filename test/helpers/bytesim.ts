/**
 * A byte-level reference for simple cases, independent of the model: one
 * block device or one file as a real byte array, written with the real
 * pattern bytes, and reads decoded with decodeBytes exactly as a target's
 * executor decodes what it read. Used by property tests to build the
 * observation a correct kernel would report, and to check the model's
 * prediction against plain arithmetic.
 */
import { type DecodedExtent, decodeBytes, patternBytes } from '../../model/index.ts';

export class ByteSim {
  private bytes: Uint8Array;
  size: number;
  /** Ops that wrote, and the content moves (collapse +len, insert -len) seen so far: the decode candidates. */
  private readonly writers = new Set<number>();
  private readonly deltas = new Set<number>([0]);

  /** `capacity`: the largest address ever used; `size`: the device size, or the file's initial size. */
  constructor(
    readonly seed: number,
    capacity: number,
    size: number,
    readonly isFile: boolean,
  ) {
    this.bytes = new Uint8Array(capacity);
    this.size = size;
  }

  /** write(2)/pwrite: the count, or -1 (ENOSPC) at or past the end of a block device. */
  write(op: number, offset: number, length: number): number {
    let n = length;
    if (!this.isFile) {
      if (offset >= this.size) return -1;
      n = Math.min(length, this.size - offset);
    }
    this.bytes.set(patternBytes(this.seed, op, offset, n), offset);
    this.writers.add(op);
    if (this.isFile) this.size = Math.max(this.size, offset + n);
    return n;
  }

  /** read(2): the bytes up to EOF / the end of the device. */
  read(offset: number, length: number): Uint8Array {
    const n = Math.max(0, Math.min(length, this.size - offset));
    return this.bytes.slice(offset, offset + n);
  }

  truncate(size: number): void {
    if (size < this.size) this.bytes.fill(0, size, this.size);
    this.size = size;
  }

  /** Zero [offset, offset+length) below EOF (punch hole; zero range with KEEP_SIZE). */
  zero(offset: number, length: number): void {
    const end = Math.min(offset + length, this.size);
    if (end > offset) this.bytes.fill(0, offset, end);
  }

  /** FALLOC_FL_COLLAPSE_RANGE: remove the range, move the rest down. */
  collapse(offset: number, length: number): void {
    this.bytes.copyWithin(offset, offset + length, this.size);
    this.bytes.fill(0, this.size - length, this.size);
    this.size -= length;
    for (const d of [...this.deltas]) this.deltas.add(d + length);
  }

  /** FALLOC_FL_INSERT_RANGE: move the rest up, open a hole of zeroes. */
  insert(offset: number, length: number): void {
    this.bytes.copyWithin(offset + length, offset, this.size);
    this.bytes.fill(0, offset, offset + length);
    this.size += length;
    for (const d of [...this.deltas]) this.deltas.add(d - length);
  }

  /** What a target reports for bytes read at `addr`: runs attributed by decodeBytes. */
  decode(bytes: Uint8Array, addr: number): DecodedExtent[] {
    const candidates = [...this.writers].flatMap((op) => [...this.deltas].map((delta) => ({ op, delta })));
    return decodeBytes(this.seed, bytes, addr, candidates);
  }

  /** Decoded runs of [0, size), with absolute offsets (final content). */
  finalRuns(): DecodedExtent[] {
    return this.decode(this.bytes.slice(0, this.size), 0);
  }
}
