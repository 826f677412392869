/**
 * The uncompressed ELF kernel inside a Debian bzImage. Decompressing the
 * bzImage under TCG costs seconds per boot; the kernels have CONFIG_PVH, so
 * QEMU boots the ELF directly (`-kernel vmlinux`). The payload is an xz
 * stream: find its magic (FD 37 7A 58 5A 00) and `xz -dc --single-stream`
 * from there; the result must start with the ELF magic.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { ToolMissingError, installHint } from './proc.ts';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export class VmlinuxError extends Error {
  override name = 'VmlinuxError';
}

/** Offsets of every xz magic in the image, first first. */
export function xzOffsets(image: Buffer): number[] {
  const out: number[] = [];
  for (let i = image.indexOf(XZ_MAGIC); i >= 0; i = image.indexOf(XZ_MAGIC, i + 1)) out.push(i);
  return out;
}

async function xzFrom(bzImage: string, offset: number, out: string): Promise<{ code: number; stderr: string }> {
  const child = spawn('xz', ['-dc', '--single-stream'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  try {
    await spawned;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ToolMissingError(`xz not found: ${installHint('xz')}`);
    throw err;
  }
  const closed = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 128)));
  const feed = pipeline(createReadStream(bzImage, { start: offset }), child.stdin).catch(() => undefined);
  await Promise.all([pipeline(child.stdout, createWriteStream(out)), feed]);
  return { code: await closed, stderr };
}

async function startsWithElf(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && b.equals(ELF_MAGIC);
  } finally {
    await fh.close();
  }
}

/** Write the ELF kernel of `bzImage` to `out`; throws VmlinuxError with one clear line. */
export async function extractVmlinux(bzImage: string, out: string): Promise<void> {
  const image = await readFile(bzImage);
  const offsets = xzOffsets(image);
  if (offsets.length === 0) throw new VmlinuxError(`${bzImage}: no xz-compressed payload (magic FD 37 7A 58 5A 00) found`);
  let last = '';
  for (const off of offsets) {
    const r = await xzFrom(bzImage, off, out);
    if (r.code === 0 && (await startsWithElf(out))) return;
    last = r.code === 0 ? `the xz stream at offset ${off} is not an ELF file` : `xz at offset ${off}: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`}`;
  }
  await rm(out, { force: true });
  throw new VmlinuxError(`${bzImage}: could not extract an ELF vmlinux (${last})`);
}
