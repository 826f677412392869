/**
 * dm-crypt, plain or with authenticated encryption. With `integrity` set the
 * layer must sit on a dm-integrity device that stores the per-sector tags
 * this layer computes (internalHash 'none' there), the S3 stack.
 */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId } from '../schema/common.ts';
import { MiB, blocksAtLeast, geometryOf, maxLbs } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, type SemanticIssue, lowerGeometry } from './kind.ts';
import { simpleDmSetup, wipeStep } from './dm-tables.ts';

export const CryptIntegrity = z.enum(['none', 'hmac-sha256', 'gcm', 'poly1305']);
export type CryptIntegrity = z.infer<typeof CryptIntegrity>;

/** Tag bytes per sector each AEAD mode asks of dm-integrity (auth tag + random IV). */
export const CRYPT_TAG_SIZE: Record<Exclude<CryptIntegrity, 'none'>, number> = {
  'hmac-sha256': 32 + 16,
  gcm: 16 + 12,
  poly1305: 16 + 12,
};

/** Kernel crypto API spec and key size for each mode. */
export const CRYPT_CIPHER: Record<CryptIntegrity, { cipher: string; keyBytes: number; integrityArg?: string }> = {
  none: { cipher: 'aes-xts-plain64', keyBytes: 64 },
  'hmac-sha256': { cipher: 'capi:authenc(hmac(sha256),xts(aes))-random', keyBytes: 96, integrityArg: 'aead' },
  gcm: { cipher: 'capi:gcm(aes)-random', keyBytes: 32, integrityArg: 'aead' },
  poly1305: { cipher: 'capi:rfc7539(chacha20,poly1305)-random', keyBytes: 32, integrityArg: 'aead' },
};

export const DmCryptLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('dm-crypt'),
  on: LayerId,
  integrity: CryptIntegrity.default('none'),
  sectorSize: z.union([z.literal(512), z.literal(4096)]).default(512),
  /** Write zeros through the device at set-up, so unwritten sectors read as zeros instead of garbage or errors. */
  wipe: z.boolean().default(false),
});
export type DmCryptLayer = z.infer<typeof DmCryptLayer>;

export const dmCrypt: LayerKindModule<DmCryptLayer> = {
  kind: 'dm-crypt',
  schema: DmCryptLayer,
  role: 'block',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['block'] }],
  check(layer, stack) {
    const issues: SemanticIssue[] = [];
    const below = stack.layer(layer.on);
    if (layer.integrity !== 'none') {
      if (below?.kind !== 'dm-integrity')
        issues.push({ path: ['on'], message: `authenticated dm-crypt (${layer.integrity}) must sit on a dm-integrity layer, not '${below?.kind ?? layer.on}'` });
      else {
        if (below.internalHash !== 'none')
          issues.push({ path: ['on'], message: `dm-integrity '${below.id}' under authenticated dm-crypt must have internalHash 'none' (dm-crypt supplies the tags)` });
        if (below.tagSize !== CRYPT_TAG_SIZE[layer.integrity])
          issues.push({ path: ['on'], message: `dm-integrity '${below.id}' has tagSize ${below.tagSize}; ${layer.integrity} needs ${CRYPT_TAG_SIZE[layer.integrity]}` });
        if (below.sectorSize !== layer.sectorSize)
          issues.push({ path: ['sectorSize'], message: `sector size ${layer.sectorSize} differs from dm-integrity '${below.id}' (${below.sectorSize})` });
      }
    }
    const g = stack.geometry(layer.on);
    if (g && g.sizeMin % layer.sectorSize !== 0 && g.sizeMin === g.sizeMax)
      issues.push({ path: ['sectorSize'], message: `'${layer.on}' is not a whole number of ${layer.sectorSize}-byte crypt sectors` });
    return issues;
  },
  geometry(layer, stack) {
    const g = lowerGeometry(stack, layer.on);
    const r = (n: number) => n - (n % layer.sectorSize);
    return { sizeMin: r(g.sizeMin), sizeMax: r(g.sizeMax), logicalBlockSizes: g.logicalBlockSizes.map((l) => Math.max(l, layer.sectorSize)), physicalBlockSize: Math.max(g.physicalBlockSize, layer.sectorSize) };
  },
  // Never-written sectors decrypt to noise; with AEAD their tags do not verify.
  // Unwritten sectors: plain crypt decrypts whatever is below into noise (and passes a failing read up, e.g.
  // over an authenticated crypt whose tags were never written); authenticated crypt fails their tags.
  initialFill: (layer) => (layer.wipe ? 'zero' : layer.integrity === 'none' ? 'scrambled' : 'error'),
  mapUp(layer, _ref, start, end) {
    // A damaged byte garbles the whole crypt sector it is in.
    const s = start - (start % layer.sectorSize);
    const e = Math.ceil(end / layer.sectorSize) * layer.sectorSize;
    return [[s, e]];
  },
  fault: () => ({ kind: 'none' }),
  verifiesData: (layer) => layer.integrity !== 'none',
  // Plain and not wiped: what it shows is the disk's zeroes decrypted with the same key, as after its set-up.
  resetsWithDisks: (layer) => layer.integrity === 'none' && !layer.wipe,
  needs: (layer) => ({
    modules: ['dm-mod', 'dm-crypt', ...(layer.integrity !== 'none' ? ['authenc', 'gcm', 'chacha20poly1305'] : ['xts'])],
    tools: ['dmsetup'],
    config: ['BLK_DEV_DM', 'DM_CRYPT', ...(layer.integrity !== 'none' ? ['CRYPTO_AUTHENC', 'CRYPTO_GCM', 'CRYPTO_CHACHA20POLY1305'] : ['CRYPTO_XTS'])],
  }),
};

/**
 * Generation: plain dm-crypt, or (when the target has dm-integrity) the S3
 * stack: authenticated dm-crypt on a fresh dm-integrity that stores its tags
 * (internalHash 'none', the tag size the mode needs, the same sector size).
 */
dmCrypt.arbitrary = (ctx) => {
  const candidates = blocksAtLeast(ctx, 4 * MiB);
  if (!candidates.length) return undefined;
  const aead = ctx.kinds.has('dm-integrity');
  return fc
    .record({
      on: fc.constantFrom(...candidates),
      integrity: fc.constantFrom<CryptIntegrity>('none', 'none', ...(aead ? (['hmac-sha256', 'gcm', 'poly1305'] as const) : [])),
      big: fc.integer({ min: 0, max: 3 }),
      wipe: fc.integer({ min: 0, max: 6 }),
      // Not 'bitmap': the kernel allows bitmap mode only with dm-integrity's own hash.
      mode: fc.constantFrom<'journal' | 'direct'>('journal', 'direct'),
    })
    .map(({ on, integrity, big, wipe, mode }): Layer[] => {
      const g = geometryOf(ctx, on.id);
      const sectorSize: 512 | 4096 = big === 0 || maxLbs(ctx, on.id) > 512 ? 4096 : 512;
      const fits = (n: number) => n % sectorSize === 0;
      // A fixed-size lower device must hold whole crypt sectors; otherwise fall back to 512.
      const ss: 512 | 4096 = g.sizeMin === g.sizeMax && !fits(g.sizeMin) ? 512 : sectorSize;
      if (integrity === 'none') return [{ id: ctx.id, kind: 'dm-crypt', on: on.id, integrity, sectorSize: ss, wipe: wipe === 0 }];
      const integ = `${ctx.id}-integ`;
      return [
        { id: integ, kind: 'dm-integrity', on: on.id, internalHash: 'none', tagSize: CRYPT_TAG_SIZE[integrity], sectorSize: ss, mode, wipe: false },
        { id: ctx.id, kind: 'dm-crypt', on: integ, integrity, sectorSize: ss, wipe: wipe === 0 },
      ];
    });
};

/** A dm-crypt table with the case's deterministic key; `wipe` writes zeroes through it once made. */
dmCrypt.setup = (layer, env, stack) => {
  const { steps } = simpleDmSetup(layer, env, stack);
  return { steps: layer.wipe ? [...steps, wipeStep(layer.id, env)] : steps };
};
