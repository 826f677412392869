/**
 * Kernel ids are Debian's kernel ABI names with the flavour, which are also
 * the kernels' release strings (`uname -r`) and the suffix of their
 * linux-image packages: 6.1.0-56-amd64, 6.1.0-56-cloud-amd64,
 * 6.1.0-56-rt-amd64.
 */
export const FLAVOURS = ['amd64', 'cloud-amd64', 'rt-amd64'] as const;
export type Flavour = (typeof FLAVOURS)[number];

const ID_RE = /^(\d+)\.(\d+)\.(\d+)-(\d+)-(amd64|cloud-amd64|rt-amd64)$/;

export interface KernelId {
  id: string;
  /** [major, minor, patch, abi] */
  abi: [number, number, number, number];
  flavour: Flavour;
}

export function parseKernelId(id: string): KernelId | undefined {
  const m = ID_RE.exec(id);
  if (!m) return undefined;
  return { id, abi: [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])], flavour: m[5] as Flavour };
}

/** Why `id` is not a kernel id, or undefined. */
export function kernelIdProblem(id: string): string | undefined {
  if (parseKernelId(id)) return undefined;
  return `'${id}' is not a kernel id: expected ABI-flavour like 6.1.0-56-amd64 (flavours: ${FLAVOURS.join(', ')})`;
}

export function packageName(id: string, dbg = false): string {
  return `linux-image-${id}${dbg ? '-dbg' : ''}`;
}

/** Newest first: higher ABI, then the generic flavour before cloud and rt. */
export function compareNewestFirst(a: string, b: string): number {
  const x = parseKernelId(a);
  const y = parseKernelId(b);
  if (!x || !y) return a < b ? 1 : a > b ? -1 : 0;
  for (let i = 0; i < 4; i++) if (x.abi[i] !== y.abi[i]) return y.abi[i]! - x.abi[i]!;
  return FLAVOURS.indexOf(x.flavour) - FLAVOURS.indexOf(y.flavour);
}

/** 6.1.192 from a Debian package version like 6.1.192-2. */
export function upstreamOf(packageVersion: string): string {
  return packageVersion.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
}
