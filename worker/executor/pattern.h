/*
 * The data pattern, bit-exact with model/pattern.ts: byte `addr` of op `op`'s
 * pattern is byte (addr mod 4) of a 32-bit hash of (seed, op, addr div 4),
 * with 0 replaced by 0xa5 so that zeroes always mean "no op wrote this".
 * Addresses are signed 64-bit with floor division (a negative delta may
 * reach below 0; the TS code's Math.floor and >>> 0 agree with this).
 */
#ifndef BF_PATTERN_H
#define BF_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* The part of the hash chain that depends only on (seed, op): computed once per op. */
uint32_t pattern_key(uint32_t seed, uint32_t op);
/* patternWord with a precomputed key. */
uint32_t pattern_word_k(uint32_t key, int64_t word);

uint32_t pattern_word(uint32_t seed, uint32_t op, int64_t word);
uint8_t pattern_byte(uint32_t seed, uint32_t op, int64_t addr);

/* patternByte with a precomputed key. */
uint8_t pattern_byte_k(uint32_t key, int64_t addr);

/* dst[i] = patternByte(seed, op, addr + i) for i < len. */
void pattern_fill(uint8_t *dst, size_t len, uint32_t seed, uint32_t op, int64_t addr);

/* Number of leading bytes of b (at most n) that equal the pattern of `key` from address a. */
size_t pattern_match(const uint8_t *b, size_t n, uint32_t key, int64_t a);

#endif
