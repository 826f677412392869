/*
 * The user buffer of a read or write, placed as the plan says: heap memory,
 * a fresh anonymous mapping with only the first k pages faulted in (S2), or
 * a shared mapping of a file. Every placement starts `align` bytes past a
 * page boundary.
 */
#ifndef BF_BUFFERS_H
#define BF_BUFFERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

#define PAGE_SIZE_ 4096
/* What a read buffer holds before the read: not zero, so bytes the kernel claims but never wrote decode as unknown. */
#define POISON 0xee

/*
 * A thread's reusable heap buffer: ordinary memory that stays faulted in, so
 * a heap op costs no allocation and no page faults (fio-like per-op cost).
 */
struct heap_cache {
	uint8_t *p;
	size_t size;
};

void heap_cache_free(struct heap_cache *h);

struct io_buffer {
	uint8_t *p; /* base + align */
	uint8_t *base;
	size_t size; /* allocated or mapped bytes from base */
	enum placement placement;
};

/*
 * Prepare the buffer for `len` bytes. Writes: heap buffers get the whole
 * pattern (patternByte(seed, op, addr + i)), anon buffers only on their
 * touched pages, mmap buffers nothing (they carry the mapped file's bytes).
 * Reads: heap and the touched anon pages are poisoned. `path` is the
 * substituted mmap path. Returns 0 or an errno.
 */
int buffer_prepare(struct io_buffer *b, const struct buffer_spec *s, const char *path, size_t len, bool is_write, uint32_t seed,
		   uint32_t op, int64_t addr, struct heap_cache *heap);
void buffer_release(struct io_buffer *b);

#endif
