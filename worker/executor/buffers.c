/* Buffer placement; see buffers.h. */
#define _GNU_SOURCE
#include "buffers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pattern.h"

static size_t round_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

void heap_cache_free(struct heap_cache *h)
{
	free(h->p);
	h->p = NULL;
	h->size = 0;
}

static int prepare_heap(struct io_buffer *b, size_t align, size_t len, bool is_write, uint32_t seed, uint32_t op, int64_t addr,
			struct heap_cache *heap)
{
	size_t size = round_up(align + len, PAGE_SIZE_);
	if (heap->size < size) {
		void *p;
		int e = posix_memalign(&p, PAGE_SIZE_, size);
		if (e)
			return e;
		heap_cache_free(heap);
		heap->p = p;
		heap->size = size;
	}
	b->base = heap->p;
	b->size = size;
	b->p = b->base + align;
	if (is_write)
		pattern_fill(b->p, len, seed, op, addr);
	else
		memset(b->p, POISON, len);
	return 0;
}

static int prepare_anon(struct io_buffer *b, size_t align, int64_t touched, size_t len, bool is_write, uint32_t seed, uint32_t op,
			int64_t addr)
{
	b->size = round_up(align + len, PAGE_SIZE_);
	void *m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return errno;
	b->base = m;
	b->p = b->base + align;
	/* A transparent huge page would fault in 2 MiB at the first touch; the untouched pages must stay unfaulted. */
	madvise(m, b->size, MADV_NOHUGEPAGE);
	size_t pages = b->size / PAGE_SIZE_;
	size_t k = touched < 0 ? 0 : (size_t)touched > pages ? pages : (size_t)touched;
	size_t touched_bytes = k * PAGE_SIZE_;
	if (is_write) {
		/* The pattern on the touched pages faults them in; the rest of the buffer reads as the zero page. */
		size_t filled = touched_bytes > align ? touched_bytes - align : 0;
		if (filled > len)
			filled = len;
		pattern_fill(b->p, filled, seed, op, addr);
		for (size_t pg = 0; pg < k; pg++)
			if (pg * PAGE_SIZE_ + PAGE_SIZE_ <= align || pg * PAGE_SIZE_ >= align + filled)
				b->base[pg * PAGE_SIZE_] = 0; /* a touched page that holds none of the buffer's pattern */
	} else
		memset(b->base, POISON, touched_bytes);
	return 0;
}

static int prepare_mmap(struct io_buffer *b, const char *path, int64_t offset, size_t align, size_t len)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	b->size = round_up(align + len, PAGE_SIZE_);
	void *m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	int e = errno;
	close(fd); /* the mapping keeps the file */
	if (m == MAP_FAILED)
		return e;
	b->base = m;
	b->p = b->base + align;
	return 0;
}

int buffer_prepare(struct io_buffer *b, const struct buffer_spec *s, const char *path, size_t len, bool is_write, uint32_t seed,
		   uint32_t op, int64_t addr, struct heap_cache *heap)
{
	memset(b, 0, sizeof *b);
	b->placement = s->placement;
	size_t align = (size_t)s->align;
	switch (s->placement) {
	case BUF_HEAP:
		return prepare_heap(b, align, len, is_write, seed, op, addr, heap);
	case BUF_ANON:
		return prepare_anon(b, align, s->touched_pages, len, is_write, seed, op, addr);
	case BUF_MMAP:
		return prepare_mmap(b, path, s->offset, align, len);
	}
	return EINVAL;
}

void buffer_release(struct io_buffer *b)
{
	if (!b->base)
		return;
	if (b->placement != BUF_HEAP) /* heap buffers belong to the thread's heap_cache */
		munmap(b->base, b->size);
	memset(b, 0, sizeof *b);
}
