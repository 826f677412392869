/* The data pattern; see pattern.h and model/pattern.ts (the reference). */
#include "pattern.h"

#include <stdbool.h>
#include <string.h>

static inline uint32_t fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

uint32_t pattern_key(uint32_t seed, uint32_t op)
{
	uint32_t h = fmix32(seed ^ 0x9e3779b9u);
	return fmix32(h ^ op);
}

uint32_t pattern_word_k(uint32_t key, int64_t word)
{
	/* lo/hi: the two halves of the word index in two's complement, as `>>> 0` gives in TS. */
	uint32_t lo = (uint32_t)(uint64_t)word;
	uint32_t hi = (uint32_t)((uint64_t)word >> 32);
	uint32_t h = fmix32(key ^ lo);
	return fmix32(h ^ hi ^ 0x5bd1e995u);
}

uint32_t pattern_word(uint32_t seed, uint32_t op, int64_t word)
{
	return pattern_word_k(pattern_key(seed, op), word);
}

static inline uint8_t word_byte(uint32_t w, int k)
{
	uint8_t b = (uint8_t)(w >> (8 * k));
	return b ? b : 0xa5;
}

uint8_t pattern_byte(uint32_t seed, uint32_t op, int64_t addr)
{
	/* >> on a negative int64 is arithmetic (gcc), i.e. floor division by 4. */
	return word_byte(pattern_word(seed, op, addr >> 2), (int)(addr & 3));
}

uint8_t pattern_byte_k(uint32_t key, int64_t addr)
{
	return word_byte(pattern_word_k(key, addr >> 2), (int)(addr & 3));
}

/*
 * The bulk paths (writes fill 4 KiB..64 MiB buffers, reads compare as much)
 * work on blocks of 64 words = 256 bytes with GCC vector extensions:
 * target_clones builds an AVX2 version and a baseline one and picks at load
 * time. x86 and arm64 are little-endian: byte k of a word in memory is
 * (word >> 8k) & 0xff, which is what patternByte takes.
 */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the block pattern code assumes a little-endian machine"
#endif

#define BLOCK_WORDS 64
#define BLOCK_BYTES (4 * BLOCK_WORDS)

typedef uint32_t v8u32 __attribute__((vector_size(32)));
typedef uint8_t v32u8 __attribute__((vector_size(32)));

/* fmix32 on 8 lanes; a macro, since passing 32-byte vectors to functions is ABI-dependent. */
#define VFMIX32(h)                  \
	do {                        \
		(h) ^= (h) >> 16;   \
		(h) *= 0x85ebca6bu; \
		(h) ^= (h) >> 13;   \
		(h) *= 0xc2b2ae35u; \
		(h) ^= (h) >> 16;   \
	} while (0)

/* dst[0, 256) = the pattern bytes of words lo0 .. lo0 + 63 (all with the same high half `hi`). */
__attribute__((target_clones("avx2", "default"))) static void pattern_block(uint8_t *dst, uint32_t key, uint32_t lo0, uint32_t hi)
{
	const v8u32 step = { 0, 1, 2, 3, 4, 5, 6, 7 };
	for (uint32_t i = 0; i < BLOCK_WORDS; i += 8) {
		v8u32 h = key ^ (lo0 + i + step);
		VFMIX32(h);
		h ^= hi ^ 0x5bd1e995u;
		VFMIX32(h);
		v32u8 b = (v32u8)h;
		b |= (v32u8)(b == 0) & 0xa5; /* never a zero byte */
		memcpy(dst + 4 * i, &b, sizeof b);
	}
}

/* Whether the 64 words from w share their high half (a block must not straddle a multiple of 2^32 words). */
static inline bool block_ok(int64_t w)
{
	return ((uint64_t)w & 0xffffffffu) <= 0xffffffffu - BLOCK_WORDS + 1;
}

void pattern_fill(uint8_t *dst, size_t len, uint32_t seed, uint32_t op, int64_t addr)
{
	uint32_t key = pattern_key(seed, op);
	size_t i = 0;
	while (i < len && ((addr + (int64_t)i) & 3))
		dst[i] = pattern_byte_k(key, addr + (int64_t)i), i++;
	while (len - i >= BLOCK_BYTES) {
		int64_t w = (addr + (int64_t)i) >> 2;
		if (!block_ok(w))
			break;
		pattern_block(dst + i, key, (uint32_t)(uint64_t)w, (uint32_t)((uint64_t)w >> 32));
		i += BLOCK_BYTES;
	}
	while (i < len) {
		int64_t a = addr + (int64_t)i;
		uint32_t w = pattern_word_k(key, a >> 2);
		for (int k = (int)(a & 3); k < 4 && i < len; k++, i++)
			dst[i] = word_byte(w, k);
	}
}

static size_t scalar_match(const uint8_t *b, size_t n, uint32_t key, int64_t a)
{
	size_t i = 0;
	while (i < n) {
		int64_t x = a + (int64_t)i;
		uint32_t w = pattern_word_k(key, x >> 2);
		for (int k = (int)(x & 3); k < 4 && i < n; k++, i++)
			if (b[i] != word_byte(w, k))
				return i;
	}
	return n;
}

size_t pattern_match(const uint8_t *b, size_t n, uint32_t key, int64_t a)
{
	size_t i = 0;
	/* Short comparisons (the decoder's 8-byte look-ahead) stay scalar. */
	while (i < n && ((a + (int64_t)i) & 3))
		if (b[i] != pattern_byte_k(key, a + (int64_t)i))
			return i;
		else
			i++;
	uint8_t expect[BLOCK_BYTES];
	while (n - i >= BLOCK_BYTES) {
		int64_t w = (a + (int64_t)i) >> 2;
		if (!block_ok(w))
			break;
		pattern_block(expect, key, (uint32_t)(uint64_t)w, (uint32_t)((uint64_t)w >> 32));
		if (memcmp(expect, b + i, BLOCK_BYTES) != 0) {
			size_t k = 0;
			while (expect[k] == b[i + k])
				k++;
			return i + k;
		}
		i += BLOCK_BYTES;
	}
	return i + scalar_match(b + i, n - i, key, a + (int64_t)i);
}
