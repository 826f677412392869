/* The data pattern; see pattern.h and model/pattern.ts (the reference). */
#include "pattern.h"

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

void pattern_fill(uint8_t *dst, size_t len, uint32_t seed, uint32_t op, int64_t addr)
{
	uint32_t key = pattern_key(seed, op);
	size_t i = 0;
	while (i < len) {
		int64_t a = addr + (int64_t)i;
		uint32_t w = pattern_word_k(key, a >> 2);
		for (int k = (int)(a & 3); k < 4 && i < len; k++, i++)
			dst[i] = word_byte(w, k);
	}
}

size_t pattern_match(const uint8_t *b, size_t n, uint32_t key, int64_t a)
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
