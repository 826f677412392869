/**
 * dm-crypt, plain or with authenticated encryption. With `integrity` set the
 * layer must sit on a dm-integrity device that stores the per-sector tags
 * this layer computes (internalHash 'none' there), the S3 stack.
 */
import { z } from 'zod';
import { LayerId } from '../schema/common.ts';
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
  poly1305: { cipher: 'capi:rfc7539(chacha20,poly1305)-random', keyBytes: 36, integrityArg: 'aead' },
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
  initialFill: (layer) => (layer.wipe ? 'zero' : layer.integrity === 'none' ? 'any' : 'error'),
  mapUp(layer, _ref, start, end) {
    // A damaged byte garbles the whole crypt sector it is in.
    const s = start - (start % layer.sectorSize);
    const e = Math.ceil(end / layer.sectorSize) * layer.sectorSize;
    return [[s, e]];
  },
  fault: () => ({ kind: 'none' }),
  verifiesData: (layer) => layer.integrity !== 'none',
  needs: (layer) => ({
    modules: ['dm-mod', 'dm-crypt', ...(layer.integrity !== 'none' ? ['authenc', 'gcm', 'chacha20poly1305'] : ['xts'])],
    tools: ['dmsetup'],
    config: ['BLK_DEV_DM', 'DM_CRYPT', ...(layer.integrity !== 'none' ? ['CRYPTO_AUTHENC', 'CRYPTO_GCM', 'CRYPTO_CHACHA20POLY1305'] : ['CRYPTO_XTS'])],
  }),
};

/** A dm-crypt table with the case's deterministic key; `wipe` writes zeroes through it once made. */
dmCrypt.setup = (layer, env, stack) => {
  const { steps } = simpleDmSetup(layer, env, stack);
  return { steps: layer.wipe ? [...steps, wipeStep(layer.id, env)] : steps };
};
