/**
 * The uncompressed ELF kernel inside a Debian bzImage. Decompressing the
 * bzImage under TCG costs seconds per boot; the kernels have CONFIG_PVH, so
 * QEMU boots the ELF directly (`-kernel vmlinux`).
 *
 * Where the payload is: the x86 boot protocol header (>= 2.08) gives its
 * offset and length after the setup sectors. Its compressor differs by
 * flavour (Debian's generic and rt kernels use xz, the cloud kernels lz4),
 * so it is recognised by its magic and piped through that tool. The kernel
 * appends the uncompressed size as 4 bytes; they are left out (lz4 refuses
 * them) and checked against the result, which must start with the ELF magic.
 * An image without a usable header falls back to looking for xz streams.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { ToolMissingError, installHint } from './proc.ts';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export class VmlinuxError extends Error {
  override name = 'VmlinuxError';
}

/** A compressor the kernel's build can use for its payload, and how to undo it. */
interface PayloadFormat {
  name: string;
  magic: Buffer;
  tool: string;
  args: string[];
}

const FORMATS: readonly PayloadFormat[] = [
  { name: 'xz', magic: XZ_MAGIC, tool: 'xz', args: ['-dc', '--single-stream'] },
  { name: 'lz4', magic: Buffer.from([0x02, 0x21, 0x4c, 0x18]), tool: 'lz4', args: ['-dc'] },
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b]), tool: 'gzip', args: ['-dc'] },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), tool: 'zstd', args: ['-dc'] },
  { name: 'bzip2', magic: Buffer.from('BZh', 'latin1'), tool: 'bzip2', args: ['-dc'] },
  { name: 'lzma', magic: Buffer.from([0x5d, 0x00, 0x00]), tool: 'xz', args: ['-dc', '--format=lzma'] },
];

/** Offsets of every xz magic in the image, first first. */
export function xzOffsets(image: Buffer): number[] {
  const out: number[] = [];
  for (let i = image.indexOf(XZ_MAGIC); i >= 0; i = image.indexOf(XZ_MAGIC, i + 1)) out.push(i);
  return out;
}

/** Where the compressed kernel sits in a bzImage, from its boot protocol header; undefined when the header is missing or too old. */
export function bzPayload(image: Buffer): { offset: number; length: number } | undefined {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  if (image.readUInt16LE(0x206) < 0x208) return undefined;
  const setupSects = image[0x1f1] || 4;
  const offset = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  if (length <= 4 || offset + length > image.length) return undefined;
  return { offset, length };
}

export function payloadFormat(head: Buffer): PayloadFormat | undefined {
  return FORMATS.find((f) => head.subarray(0, f.magic.length).equals(f.magic));
}

/** Pipe bytes [start, end) of `file` through a decompressor into `out`. */
async function decompress(fmt: PayloadFormat, file: string, start: number, end: number | undefined, out: string): Promise<{ code: number; stderr: string }> {
  const child = spawn(fmt.tool, fmt.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  try {
    await spawned;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ToolMissingError(`${fmt.tool} not found (the kernel's payload is ${fmt.name}-compressed): ${installHint(fmt.tool)}`);
    throw err;
  }
  const closed = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 128)));
  const feed = pipeline(createReadStream(file, end === undefined ? { start } : { start, end: end - 1 }), child.stdin).catch(() => undefined);
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

const lastLineOf = (s: string, code: number) => s.trim().split('\n').pop() || `exit ${code}`;

/** Write the ELF kernel of `bzImage` to `out`; throws VmlinuxError with one clear line. */
export async function extractVmlinux(bzImage: string, out: string): Promise<void> {
  const image = await readFile(bzImage);
  const payload = bzPayload(image);
  if (payload) {
    const fmt = payloadFormat(image.subarray(payload.offset, payload.offset + 8));
    if (!fmt) throw new VmlinuxError(`${bzImage}: the compressed kernel (at ${payload.offset}) is in no format we can undo (starts ${image.subarray(payload.offset, payload.offset + 6).toString('hex')})`);
    const size = image.readUInt32LE(payload.offset + payload.length - 4);
    const r = await decompress(fmt, bzImage, payload.offset, payload.offset + payload.length - 4, out);
    if (r.code !== 0) {
      await rm(out, { force: true });
      throw new VmlinuxError(`${bzImage}: ${fmt.tool} could not undo the ${fmt.name} payload: ${lastLineOf(r.stderr, r.code)}`);
    }
    const got = (await stat(out)).size;
    if (got !== size || !(await startsWithElf(out))) {
      await rm(out, { force: true });
      throw new VmlinuxError(`${bzImage}: could not extract an ELF vmlinux (the ${fmt.name} payload gave ${got} bytes${got === size ? ' that are not ELF' : `, the image says ${size}`})`);
    }
    return;
  }
  // No boot protocol header: look for xz streams anywhere.
  const offsets = xzOffsets(image);
  if (offsets.length === 0) throw new VmlinuxError(`${bzImage}: not a bzImage with a payload we know (no boot header, no xz magic FD 37 7A 58 5A 00)`);
  let last = '';
  for (const off of offsets) {
    const r = await decompress(FORMATS[0]!, bzImage, off, undefined, out);
    if (r.code === 0 && (await startsWithElf(out))) return;
    last = r.code === 0 ? `the xz stream at offset ${off} is not an ELF file` : `xz at offset ${off}: ${lastLineOf(r.stderr, r.code)}`;
  }
  await rm(out, { force: true });
  throw new VmlinuxError(`${bzImage}: could not extract an ELF vmlinux (${last})`);
}
