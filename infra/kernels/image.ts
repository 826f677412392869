/**
 * What a file claims to be, for `kernels add`: an x86 bzImage (the boot
 * protocol header: 0xAA55 at 0x1FE, "HdrS" at 0x202), booted as it is, or an
 * ELF64 x86-64 vmlinux, booted directly by QEMU when it carries the Xen PVH
 * entry note (XEN_ELFNOTE_PHYS32_ENTRY, type 18, name "Xen"; the kernel has
 * it with CONFIG_PVH). Anything else is not a kernel QEMU can boot here.
 *
 * The release (`uname -r`) comes from the image: the bzImage header points at
 * its version string; a vmlinux holds "Linux version <release> ..." in its
 * rodata.
 */
import { open, readFile } from 'node:fs/promises';

export type KernelImageKind = 'bzImage' | 'vmlinux';

export interface KernelImageFacts {
  kind: KernelImageKind;
  /** ELF only: whether it has the PVH entry note (QEMU -kernel boots it directly). */
  pvh: boolean;
  /** The kernel release, e.g. 6.1.192 or 6.1.0-56-amd64, when the image says. */
  release?: string;
  /** ELF only: whether it has a symbol table (nm can make a System.map from it). */
  symbols?: boolean;
}

export class KernelImageError extends Error {
  override name = 'KernelImageError';
}

const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const PT_NOTE = 4;
const EM_X86_64 = 62;
const SHT_SYMTAB = 2;

function cString(b: Buffer, at: number, max = 256): string {
  const end = b.indexOf(0, at);
  return b.toString('latin1', at, end < 0 ? Math.min(b.length, at + max) : Math.min(end, at + max));
}

/** Facts of a bzImage from its first pages, or undefined when it is not one. */
export function bzImageFacts(head: Buffer): KernelImageFacts | undefined {
  if (head.length < 0x264) return undefined;
  if (head.readUInt16LE(0x1fe) !== 0xaa55 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const version = head.readUInt16LE(0x206);
  // The kernel_version field (protocol >= 2.00) is an offset from 0x200 to "6.1.0-56-amd64 (debian-kernel@...) #1 SMP ...".
  let release: string | undefined;
  const ptr = version >= 0x200 ? head.readUInt16LE(0x20e) : 0;
  if (ptr && ptr + 0x200 < head.length) release = cString(head, ptr + 0x200).split(' ')[0] || undefined;
  // setup_data's loadflags bit 0 (LOADED_HIGH): a bzImage, not a zImage; 64-bit entry needs xloadflags bit 0.
  const xloadflags = version >= 0x20c ? head.readUInt16LE(0x236) : 0;
  if (!(xloadflags & 1)) throw new KernelImageError('a bzImage without a 64-bit entry point (XLF_KERNEL_64): not an x86-64 kernel');
  return release ? { kind: 'bzImage', pvh: false, release } : { kind: 'bzImage', pvh: false };
}

/** Facts of an ELF vmlinux, or undefined when it is not ELF. */
export function elfFacts(file: Buffer): KernelImageFacts | undefined {
  if (file.length < 64 || file.readUInt32BE(0) !== 0x7f454c46) return undefined;
  if (file[4] !== 2 || file[5] !== 1) throw new KernelImageError('an ELF file, but not 64-bit little-endian: not an x86-64 kernel');
  const machine = file.readUInt16LE(18);
  if (machine !== EM_X86_64) throw new KernelImageError(`an ELF file for machine ${machine}, not x86-64 (62)`);
  const phoff = Number(file.readBigUInt64LE(32));
  const phentsize = file.readUInt16LE(54);
  const phnum = file.readUInt16LE(56);
  let pvh = false;
  for (let i = 0; i < phnum && !pvh; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > file.length || file.readUInt32LE(ph) !== PT_NOTE) continue;
    const off = Number(file.readBigUInt64LE(ph + 8));
    const size = Number(file.readBigUInt64LE(ph + 32));
    for (let n = off; n + 12 <= off + size && n + 12 <= file.length; ) {
      const namesz = file.readUInt32LE(n);
      const descsz = file.readUInt32LE(n + 4);
      const type = file.readUInt32LE(n + 8);
      const name = file.toString('latin1', n + 12, n + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) pvh = true;
      n += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
    }
  }
  const shoff = Number(file.readBigUInt64LE(40));
  const shentsize = file.readUInt16LE(58);
  const shnum = file.readUInt16LE(60);
  let symbols = false;
  for (let i = 0; i < shnum && !symbols; i++) {
    const sh = shoff + i * shentsize;
    if (sh + 64 <= file.length && file.readUInt32LE(sh + 4) === SHT_SYMTAB) symbols = true;
  }
  const at = file.indexOf('Linux version ');
  const release = at >= 0 ? cString(file, at + 'Linux version '.length, 128).split(' ')[0] : undefined;
  // The banner format string has a %s there; only a real release counts.
  const good = release && /^\d+\.\d+/.test(release) ? release : undefined;
  if (!good || file.readUInt16LE(16) !== 2) throw new KernelImageError('an x86-64 ELF file, but not a Linux kernel (no "Linux version" banner in an executable image)');
  return { kind: 'vmlinux', pvh, release: good, symbols };
}

/** What kind of kernel `file` is; throws KernelImageError with one line when it is none. */
export async function kernelImageFacts(file: string): Promise<KernelImageFacts> {
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new KernelImageError(`cannot read ${file}: ${err.code ?? err.message}`);
  });
  let head: Buffer;
  let size: number;
  try {
    size = (await fh.stat()).size;
    if (!(await fh.stat()).isFile()) throw new KernelImageError(`${file} is not a regular file`);
    head = Buffer.alloc(Math.min(size, 64 * 1024));
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  const bz = bzImageFacts(head);
  if (bz) return bz;
  if (head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46) {
    const elf = elfFacts(await readFile(file));
    if (elf) return elf;
  }
  throw new KernelImageError(`${file} is not an x86-64 kernel: neither a bzImage (no "HdrS" boot header) nor an ELF vmlinux (${size} bytes)`);
}
