/*
 * blockfarm reproducer: kernel BUG in __kmem_cache_free
 * signature kernel-bug-in-kmem-cache-free-53d8e38e505c
 * seen on: qemu
 * case: gen-309-18-min; generated 2026-11-21T19:55:31Z
 *
 * WARNING: this program drives the kernel into a state where it misbehaved.
 * It may corrupt the devices it is given, hang, or crash the machine it runs on.
 * Run it in a VM, as root, on scratch devices only (repro.sh builds a stack of loop devices).
 *
 * Build:  gcc -O2 -o repro repro.c -luring -lpthread
 * Run:    ./repro md0=PATH
 *           md0: md block device
 * Exit:   0 every op did what the model allows, 1 a divergence, 2 bad arguments, 3 could not prepare
 *
 * Data: every write carries pattern(seed, op id, byte address) (see the pattern code below),
 * so each byte read back names the op that wrote it. Expectations are the blockfarm model's,
 * generated into the tables below; a check in a racing phase allows what any interleaving may leave.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- the data pattern: worker/executor/pattern.h and pattern.c of blockfarm, verbatim ---- */

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

/* The data pattern; see pattern.h and model/pattern.ts (the reference). */
/* (pattern.h is above) */
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


/* ---- the case ---- */

enum { K_WRITE, K_READ, K_MMAP_WRITE, K_MMAP_READ, K_MSYNC, K_FALLOCATE, K_TRUNCATE, K_FSYNC, K_SYNC_FILE_RANGE, K_FLUSH,
       K_DROP_CACHES, K_DISCARD, K_LOOP_SET_DIRECT_IO, K_LOOP_SET_BLOCK_SIZE, K_CORRUPT, K_BARRIER, K_SLEEP, K_EXEC };
enum { V_PSYNC, V_PVEC, V_URING };
enum { B_HEAP, B_ANON, B_MMAP };
/* What a byte may be: zero, anything, unreadable, damaged (zero or garbage), op N's pattern moved by delta. */
enum { S_ZERO, S_ANY, S_ERROR, S_NOISE, S_OP };

struct src {
	int kind;
	uint32_t op;
	int64_t delta; /* the byte at address a is pattern_byte(SEED, op, a + delta) */
};
struct piece {
	int64_t start, end; /* absolute offsets in the object */
	int must_error;     /* reading here must fail: data is wrong */
	int nsrc;
	const struct src *src;
};
struct expect {
	int checked, racing, success, partial_any, partial_on_errors, signal, must_signal;
	int ncounts;
	const int64_t *counts;
	int64_t min_count; /* -1: none */
	int nerr;
	const char *const *errnos;
	const char *text; /* the model's words */
	int64_t read_offset;
	int npieces;
	const struct piece *pieces;
	/* What the model predicts this op returns: the tables of later ops assume it did. */
	int64_t pred_ret;
	const char *pred_err; /* errno or signal name when pred_ret < 0 */
	int npred;
	const struct piece *pred; /* reads: the predicted bytes */
};
struct op {
	int id, kind, thread, obj;
	const char *what;
	int64_t offset, length, size, mode, map_length;
	int via, nowait, direct, dsync, vectors, on;
	int buf, buf_align, buf_obj;
	int64_t buf_touched, buf_offset;
	int nargv;                        /* K_EXEC: commands, run in order */
	const char *const *const *argv;   /* argv templates: a dollar-brace NAME reference is the value of @NAME=VALUE */
	const char *close_prefix;         /* K_EXEC: first close the fds and mappings of paths starting with this */
};
struct final {
	int obj, is_file, nsizes;
	const int64_t *sizes;
	int nranges;
	const int64_t (*ranges)[2];
	int npieces;
	const struct piece *pieces;
};

#define SEED 3832075008u
#define NOBJ 1
#define NOPS 1
#define NTHREADS 1
#define NVARIANTS 1
#define NGEO 0
static const int GEO_OBJ[] = { -1 };
static const int64_t GEO_LBS[][1] = { { 0 } };
#define NWRITERS 1
#define NVARS 0
static const char *const VAR_NAME[] = { 0 };
static const char *const OBJ_NAME[] = { "md0" };
static const char *const OBJ_DESCR[] = { "md0: md block device" };
static const char USAGE_OBJS[] = "md0=PATH";
static const uint32_t WRITERS[] = { 1u };
static const int THREAD0[] = { 0 };
static const int64_t V0_OP0_COUNTS[] = { 4096LL };
static const char *const V0_OP0_ERRNOS[] = { 0 };
static const struct expect EXPECT_V0[] = {
	/* op 1 */ { 1, 0, 1, 0, 0, 0, 0, 1, V0_OP0_COUNTS, -1, 0, V0_OP0_ERRNOS, "success (4096 bytes)", 0, 0, 0, 4096LL, 0, 0, 0 },
};
static const int64_t V0_FINAL0_SIZES[] = { 85983232LL };
static const int64_t V0_FINAL0_RANGES[][2] = { { 0LL, 4096LL } };
static const struct src V0_FINAL0_PIECES_S0[] = { { S_OP, 1u, 0LL } };
static const struct piece V0_FINAL0_PIECES[] = {
	{ 0LL, 4096LL, 0, 1, V0_FINAL0_PIECES_S0 },
};
static const struct final FINALS_V0[] = {
	{ 0, 0, 1, V0_FINAL0_SIZES, 1, V0_FINAL0_RANGES, 1, V0_FINAL0_PIECES },
	{ -1, 0, 0, 0, 0, 0, 0, 0 },
};
static const struct op OPS[] = {
	/* 0: op 1, thread 0: write md0 [0, +4096) psync buffered */
	{ 1, K_WRITE, 0, 0, "write md0 [0, +4096) psync buffered", 0LL, 4096LL, 0LL, 0LL, 0LL, V_PSYNC, 0, 0, 0, 1, 0, B_HEAP, 0, -1, 0LL, 0LL, 0, 0, 0 },
};
static const int *const THREAD_OPS[] = { THREAD0 };
static const int THREAD_LEN[] = { 1 };
static const struct expect *const EXPECTS[] = { EXPECT_V0 };
static const struct final *const FINALS[] = { FINALS_V0 };

/* ---- running and checking ---- */

#define POISON 0xee
#define PAGE 4096

static const char *obj_path[NOBJ > 0 ? NOBJ : 1];
static pthread_barrier_t barrier;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int divergences;

static const struct { int e; const char *name; } ERRNAMES[] = {
#define N(x) { x, #x }
	N(EPERM), N(ENOENT), N(EINTR), N(EIO), N(ENXIO), N(EBADF), N(EAGAIN), N(ENOMEM), N(EACCES), N(EFAULT), N(ENOTBLK),
	N(EBUSY), N(EEXIST), N(EXDEV), N(ENODEV), N(ENOTDIR), N(EISDIR), N(EINVAL), N(ENFILE), N(EMFILE), N(ENOTTY),
	N(ETXTBSY), N(EFBIG), N(ENOSPC), N(ESPIPE), N(EROFS), N(EMLINK), N(EPIPE), N(ERANGE), N(EDEADLK), N(ENAMETOOLONG),
	N(ENOLCK), N(ENOSYS), N(ENODATA), N(ETIME), N(EBADMSG), N(EOVERFLOW), N(EILSEQ), N(EOPNOTSUPP), N(ETIMEDOUT),
	N(ESTALE), N(EUCLEAN), N(EREMOTEIO), N(EDQUOT), N(ENOMEDIUM), N(ECANCELED), N(EKEYREJECTED), N(EHWPOISON),
#undef N
};

static const char *ename(int e)
{
	if (e == ECHILD)
		return "EEXEC"; /* a command of the op failed, as the executor names it */
	for (size_t k = 0; k < sizeof ERRNAMES / sizeof ERRNAMES[0]; k++)
		if (ERRNAMES[k].e == e)
			return ERRNAMES[k].name;
	static __thread char buf[24];
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

/* ------------------------------------------------------------ per-thread fds, mappings, ring */

struct fdent { int obj, fd; bool direct, dsync, writable; };
struct mapent { int obj, fd; uint8_t *addr; size_t len; };
struct tstate {
	struct fdent fds[64];
	int nfds;
	struct mapent maps[16];
	int nmaps;
	struct io_uring ring;
	bool ring_ready;
	int id;
};
static struct tstate tstates[NTHREADS];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* An fd per (object, O_DIRECT, O_DSYNC), kept for the thread's life, as the executor does. 0 or an errno. */
static int get_fd(struct tstate *ts, int obj, bool direct, bool dsync, bool need_write, int *out)
{
	for (int k = 0; k < ts->nfds; k++) {
		struct fdent *f = &ts->fds[k];
		if (f->obj == obj && f->direct == direct && f->dsync == dsync && (f->writable || !need_write)) {
			*out = f->fd;
			return 0;
		}
	}
	int flags = O_CLOEXEC | (direct ? O_DIRECT : 0) | (dsync ? O_DSYNC : 0);
	bool writable = true;
	int fd = open(obj_path[obj], O_RDWR | flags);
	if (fd < 0 && !need_write && (errno == EROFS || errno == EACCES || errno == EPERM)) {
		writable = false;
		fd = open(obj_path[obj], O_RDONLY | flags);
	}
	if (fd < 0)
		return errno;
	if (ts->nfds == (int)(sizeof ts->fds / sizeof ts->fds[0])) {
		close(fd);
		return EMFILE;
	}
	ts->fds[ts->nfds++] = (struct fdent){ .obj = obj, .fd = fd, .direct = direct, .dsync = dsync, .writable = writable };
	*out = fd;
	return 0;
}

static int get_map(struct tstate *ts, int obj, size_t len, struct mapent **out)
{
	for (int k = 0; k < ts->nmaps; k++) {
		struct mapent *m = &ts->maps[k];
		if (m->obj != obj)
			continue;
		if (m->len == len) {
			*out = m;
			return 0;
		}
		munmap(m->addr, m->len);
		close(m->fd);
		ts->maps[k] = ts->maps[--ts->nmaps];
		break;
	}
	int fd = open(obj_path[obj], O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	void *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		int e = errno;
		close(fd);
		return e;
	}
	if (ts->nmaps == (int)(sizeof ts->maps / sizeof ts->maps[0])) {
		munmap(a, len);
		close(fd);
		return ENOMEM;
	}
	ts->maps[ts->nmaps] = (struct mapent){ .obj = obj, .fd = fd, .addr = a, .len = len };
	*out = &ts->maps[ts->nmaps++];
	return 0;
}

/* Before a command that unmounts or removes a device: close every fd and mapping of paths starting with prefix. */
static void close_prefix(const char *prefix)
{
	size_t n = strlen(prefix);
	pthread_mutex_lock(&cache_mu);
	for (int t = 0; t < NTHREADS; t++) {
		struct tstate *ts = &tstates[t];
		for (int k = 0; k < ts->nfds;) {
			if (!strncmp(obj_path[ts->fds[k].obj], prefix, n)) {
				close(ts->fds[k].fd);
				ts->fds[k] = ts->fds[--ts->nfds];
			} else
				k++;
		}
		for (int k = 0; k < ts->nmaps;) {
			if (!strncmp(obj_path[ts->maps[k].obj], prefix, n)) {
				munmap(ts->maps[k].addr, ts->maps[k].len);
				close(ts->maps[k].fd);
				ts->maps[k] = ts->maps[--ts->nmaps];
			} else
				k++;
		}
	}
	pthread_mutex_unlock(&cache_mu);
}

/* ------------------------------------------------------------ command templates */

static const char *var_value[NVARS > 0 ? NVARS : 1];

/* Each dollar-brace NAME reference replaced by the value given as @NAME=VALUE; false if the result does not fit. */
static bool subst(char *out, size_t len, const char *tmpl)
{
	size_t o = 0;
	for (const char *p = tmpl; *p;) {
		if (p[0] == '$' && p[1] == '{') {
			const char *end = strchr(p, '}');
			int k = 0;
			for (; end && k < NVARS; k++)
				if (strlen(VAR_NAME[k]) == (size_t)(end - p - 2) && !strncmp(VAR_NAME[k], p + 2, (size_t)(end - p - 2)))
					break;
			if (end && k < NVARS) {
				size_t n = strlen(var_value[k]);
				if (o + n >= len)
					return false;
				memcpy(out + o, var_value[k], n);
				o += n;
				p = end + 1;
				continue;
			}
		}
		if (o + 1 >= len)
			return false;
		out[o++] = *p++;
	}
	out[o] = 0;
	return true;
}

/* ------------------------------------------------------------ faults in mappings */

static __thread sigjmp_buf *guard_jb;

static void on_fault(int sig)
{
	if (guard_jb)
		siglongjmp(*guard_jb, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Run fn(arg); the signal number if it faulted (SIGBUS past EOF of a mapping), else 0. */
static int guarded(void (*fn)(void *), void *arg)
{
	sigjmp_buf jb;
	int sig = sigsetjmp(jb, 1);
	if (sig) {
		guard_jb = NULL;
		return sig;
	}
	guard_jb = &jb;
	fn(arg);
	guard_jb = NULL;
	return 0;
}

/* ------------------------------------------------------------ buffers (as worker/executor/buffers.c) */

struct buffer { uint8_t *base, *p; size_t size; int placement; };

static int buffer_prepare(struct buffer *b, const struct op *op, bool is_write)
{
	size_t len = (size_t)op->length, align = (size_t)op->buf_align;
	b->size = (align + len + PAGE - 1) / PAGE * PAGE;
	b->placement = op->buf;
	switch (op->buf) {
	case B_HEAP: {
		void *p;
		int e = posix_memalign(&p, PAGE, b->size);
		if (e)
			return e;
		b->base = p;
		b->p = b->base + align;
		if (is_write)
			pattern_fill(b->p, len, SEED, (uint32_t)op->id, op->offset);
		else
			memset(b->p, POISON, len);
		return 0;
	}
	case B_ANON: {
		void *m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return errno;
		b->base = m;
		b->p = b->base + align;
		madvise(m, b->size, MADV_NOHUGEPAGE);
		size_t pages = b->size / PAGE, k = op->buf_touched < 0 ? 0 : (size_t)op->buf_touched > pages ? pages : (size_t)op->buf_touched;
		if (is_write) {
			size_t touched = k * PAGE, filled = touched > align ? touched - align : 0;
			if (filled > len)
				filled = len;
			pattern_fill(b->p, filled, SEED, (uint32_t)op->id, op->offset);
			for (size_t pg = 0; pg < k; pg++)
				if (pg * PAGE + PAGE <= align || pg * PAGE >= align + filled)
					b->base[pg * PAGE] = 0;
		} else
			memset(b->base, POISON, k * PAGE);
		return 0;
	}
	case B_MMAP: {
		int fd = open(obj_path[op->buf_obj], O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return errno;
		void *m = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)op->buf_offset);
		int e = errno;
		close(fd);
		if (m == MAP_FAILED)
			return e;
		b->base = m;
		b->p = b->base + align;
		return 0;
	}
	}
	return EINVAL;
}

static void buffer_release(struct buffer *b)
{
	if (!b->base)
		return;
	if (b->placement == B_HEAP)
		free(b->base);
	else
		munmap(b->base, b->size);
	b->base = NULL;
}

/* ------------------------------------------------------------ results and checks */

struct result {
	int64_t ret; /* bytes, 0, or -1 */
	int err;     /* errno when ret < 0 */
	int sig;     /* SIGBUS/SIGSEGV in a mapping */
	uint8_t *data; /* reads: the bytes returned (malloc'd copy) */
	int64_t us;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool byte_allowed(const struct piece *p, uint8_t b, int64_t addr)
{
	if (p->must_error)
		return false;
	for (int k = 0; k < p->nsrc; k++) {
		const struct src *s = &p->src[k];
		switch (s->kind) {
		case S_ANY:
		case S_NOISE:
			return true;
		case S_ZERO:
			if (b == 0)
				return true;
			break;
		case S_OP:
			if (pattern_byte(SEED, s->op, addr + s->delta) == b)
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

/* Words for what bytes [addr, addr+n) that start at p are: zeroes, poison, op N's data, or garbage. */
static void describe_got(char *out, size_t len, const uint8_t *p, size_t n, int64_t addr)
{
	size_t look = n < 8 ? n : 8;
	bool zero = true, poison = true;
	for (size_t i = 0; i < look; i++) {
		zero &= p[i] == 0;
		poison &= p[i] == POISON;
	}
	if (zero) {
		snprintf(out, len, "zeroes");
		return;
	}
	if (poison) {
		snprintf(out, len, "bytes the kernel never wrote into the buffer (still the poison 0x%02x)", POISON);
		return;
	}
	static const int64_t deltas[] = { 0, 512, -512, 1024, -1024, 2048, -2048, 4096, -4096 };
	for (int w = 0; w < NWRITERS; w++)
		for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
			uint32_t key = pattern_key(SEED, WRITERS[w]);
			if (pattern_match(p, look, key, addr + deltas[d]) == look) {
				if (deltas[d])
					snprintf(out, len, "op %u's data from %+" PRId64 " bytes away", WRITERS[w], deltas[d]);
				else
					snprintf(out, len, "op %u's data", WRITERS[w]);
				return;
			}
		}
	snprintf(out, len, "bytes no op wrote");
}

static void describe_allowed(char *out, size_t len, const struct piece *p)
{
	size_t used = 0;
	out[0] = 0;
	if (p->must_error) {
		snprintf(out, len, "an error (the bytes are unreadable)");
		return;
	}
	for (int k = 0; k < p->nsrc && used < len; k++) {
		const struct src *s = &p->src[k];
		const char *sep = k ? " | " : "";
		switch (s->kind) {
		case S_ZERO: used += snprintf(out + used, len - used, "%szeroes", sep); break;
		case S_ANY: used += snprintf(out + used, len - used, "%sany bytes", sep); break;
		case S_ERROR: used += snprintf(out + used, len - used, "%san error", sep); break;
		case S_NOISE: used += snprintf(out + used, len - used, "%sdamaged bytes", sep); break;
		default:
			if (s->delta)
				used += snprintf(out + used, len - used, "%sop %u's data (moved by %" PRId64 ")", sep, s->op, -s->delta);
			else
				used += snprintf(out + used, len - used, "%sop %u's data", sep, s->op);
		}
	}
}

static void hex16(char *out, const uint8_t *p, size_t n)
{
	out[0] = 0;
	for (size_t i = 0; i < n && i < 16; i++)
		sprintf(out + 3 * i, "%02x ", p[i]);
}

/* The first byte of [base, base+n) (data at p) that no piece allows; -1 when all are allowed. */
static int64_t first_bad(const struct piece *pieces, int npieces, const uint8_t *p, int64_t n, int64_t base, const struct piece **which)
{
	int k = 0;
	for (int64_t i = 0; i < n; i++) {
		int64_t a = base + i;
		while (k < npieces && pieces[k].end <= a)
			k++;
		if (k >= npieces || pieces[k].start > a)
			continue; /* not tabled: not judged */
		if (!byte_allowed(&pieces[k], p[i], a)) {
			*which = &pieces[k];
			return i;
		}
	}
	return -1;
}

static void divergence(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("  DIVERGENCE: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	divergences++;
}

/* Expected bytes at a: what the first op source of the piece holds there, or zeroes. */
static void expected_bytes(uint8_t *out, size_t n, const struct piece *p, int64_t a)
{
	memset(out, 0, n);
	for (int k = 0; k < p->nsrc; k++)
		if (p->src[k].kind == S_OP) {
			pattern_fill(out, n, SEED, p->src[k].op, a + p->src[k].delta);
			return;
		}
}

static void check_data(const char *obj, const struct piece *pieces, int npieces, const uint8_t *p, int64_t n, int64_t base)
{
	const struct piece *bad = NULL;
	int64_t i = first_bad(pieces, npieces, p, n, base, &bad);
	if (i < 0)
		return;
	char got[160], want[400], he[64], hg[64];
	uint8_t exp[16];
	size_t show = n - i < 16 ? (size_t)(n - i) : 16;
	describe_got(got, sizeof got, p + i, (size_t)(n - i), base + i);
	describe_allowed(want, sizeof want, bad);
	expected_bytes(exp, show, bad, base + i);
	hex16(he, exp, show);
	hex16(hg, p + i, show);
	divergence("at offset %" PRId64 " of '%s' the model allows %s; got %s", base + i, obj, want, got);
	printf("    expected: %s\n    got:      %s\n", he, hg);
}

static void check_against(const struct op *op, const struct expect *x, const struct result *r)
{
	if (r->sig) {
		if (!x->signal)
			divergence("died with %s; the model allows %s", r->sig == SIGBUS ? "SIGBUS" : "SIGSEGV", x->text);
		return;
	}
	if (x->must_signal) {
		divergence("it had to raise SIGBUS: %s", x->text);
		return;
	}
	if (r->ret < 0) {
		for (int k = 0; k < x->nerr; k++)
			if (!strcmp(x->errnos[k], ename(r->err)))
				return;
		divergence("failed with %s; the model allows %s", ename(r->err), x->text);
		return;
	}
	if (!x->success) {
		divergence("succeeded; the model allows only %s", x->text);
		return;
	}
	int64_t full = 0;
	bool in = false;
	for (int k = 0; k < x->ncounts; k++) {
		if (x->counts[k] > full)
			full = x->counts[k];
		in |= x->counts[k] == r->ret;
	}
	if (!in) {
		bool short_ok = r->ret < full && ((x->partial_any && r->ret > 0) || x->partial_on_errors || (x->min_count >= 0 && r->ret >= x->min_count));
		if (!short_ok) {
			if ((op->kind == K_READ || op->kind == K_MMAP_READ) && r->ret < full)
				divergence("returned %" PRId64 " of %" PRId64 " bytes below EOF; the model allows %s", r->ret, full, x->text);
			else
				divergence("returned %" PRId64 " bytes; the model allows %s", r->ret, x->text);
			return;
		}
	}
	if (r->data && r->ret > 0 && x->npieces) {
		if (x->racing)
			printf("  (racing phase: checked against what any interleaving of the other threads may leave)\n");
		check_data(OBJ_NAME[op->obj], x->pieces, x->npieces, r->data, r->ret, x->read_offset);
	}
}

/*
 * The tables hold for one path through the program: the geometry they were
 * made for, and every earlier op returning what the model predicts. When the
 * kernel takes another allowed path (a racing read sees the other order, a
 * loop device picks another block size), later checks would judge against
 * the wrong state: they are switched off, with the reason (blockfarm itself
 * judges such runs completely).
 */
static int variant;
static bool tables_on = true;
static char tables_off_why[300];

static void tables_off(const char *fmt, ...)
{
	if (!tables_on)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tables_off_why, sizeof tables_off_why, fmt, ap);
	va_end(ap);
	tables_on = false;
	printf("  (from here on nothing is checked: %s)\n", tables_off_why);
}

static bool as_predicted(const struct op *op, const struct expect *x, const struct result *r, char *why, size_t len)
{
	if (r->sig || r->ret < 0) {
		const char *got = r->sig ? (r->sig == SIGBUS ? "SIGBUS" : "SIGSEGV") : ename(r->err);
		if (x->pred_ret < 0 && x->pred_err && !strcmp(x->pred_err, got))
			return true;
		snprintf(why, len, "op %d returned %s where the tables assume %s%" PRId64, op->id, got, x->pred_ret < 0 ? "an error " : "", x->pred_ret);
		return false;
	}
	if (r->ret != x->pred_ret) {
		snprintf(why, len, "op %d returned %" PRId64 " where the tables assume %" PRId64, op->id, r->ret, x->pred_ret);
		return false;
	}
	if (r->data && x->npred) {
		const struct piece *bad = NULL;
		int64_t i = first_bad(x->pred, x->npred, r->data, r->ret, x->read_offset, &bad);
		if (i >= 0) {
			snprintf(why, len, "op %d read other allowed data at offset %" PRId64 " than the tables assume", op->id, x->read_offset + i);
			return false;
		}
	}
	return true;
}

static void check(const struct op *op, const struct result *r)
{
	const struct expect *x = &EXPECTS[variant][op - OPS];
	if (r->sig)
		printf("op %d (thread %d) %s: died with %s\n", op->id, op->thread, op->what, r->sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
	else if (r->ret < 0)
		printf("op %d (thread %d) %s: %s\n", op->id, op->thread, op->what, ename(r->err));
	else
		printf("op %d (thread %d) %s: ok, %" PRId64 "%s\n", op->id, op->thread, op->what, r->ret,
		       op->kind == K_READ || op->kind == K_WRITE || op->kind == K_MMAP_READ || op->kind == K_MMAP_WRITE ? " bytes" : "");
	if (op->kind == K_BARRIER || op->kind == K_SLEEP || !tables_on)
		return;
	if (!x->checked) {
		tables_off("op %d is in a racing phase the model settles by exploring interleavings", op->id);
		return;
	}
	int before = divergences;
	check_against(op, x, r);
	char why[300];
	if (divergences != before)
		tables_off("the tables assume op %d did what the model allows", op->id);
	else if (!as_predicted(op, x, r, why, sizeof why))
		tables_off("%s", why);
}

/* ------------------------------------------------------------ the ops (as worker/executor/io.c) */

static int cut_iovecs(struct iovec *iov, uint8_t *p, size_t len, int vectors)
{
	size_t n = (size_t)vectors < len ? (size_t)vectors : len;
	size_t part = len / n;
	for (size_t k = 0; k < n; k++) {
		iov[k].iov_base = p + k * part;
		iov[k].iov_len = k == n - 1 ? len - part * (n - 1) : part;
	}
	return (int)n;
}

static int64_t uring_rw(struct tstate *ts, bool write, int fd, const struct iovec *iov, int n, int64_t off, int flags)
{
	if (!ts->ring_ready) {
		int e = io_uring_queue_init(8, &ts->ring, 0);
		if (e < 0)
			return e;
		ts->ring_ready = true;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ts->ring);
	if (!sqe)
		return -EBUSY;
	if (write)
		io_uring_prep_writev(sqe, fd, iov, (unsigned)n, (uint64_t)off);
	else
		io_uring_prep_readv(sqe, fd, iov, (unsigned)n, (uint64_t)off);
	sqe->rw_flags = flags;
	int s = io_uring_submit(&ts->ring);
	if (s < 0)
		return s;
	struct io_uring_cqe *cqe;
	int e;
	while ((e = io_uring_wait_cqe(&ts->ring, &cqe)) == -EINTR || e == -EAGAIN) {
	}
	if (e)
		return e;
	int res = cqe->res;
	io_uring_cqe_seen(&ts->ring, cqe);
	return res;
}

static void set_ret(struct result *r, int64_t ret)
{
	if (ret < 0) {
		r->ret = -1;
		r->err = (int)-ret;
	} else
		r->ret = ret;
}

static void do_data(struct tstate *ts, const struct op *op, struct result *r)
{
	bool wr = op->kind == K_WRITE;
	size_t len = (size_t)op->length;
	int fd, e;
	pthread_mutex_lock(&cache_mu);
	e = get_fd(ts, op->obj, op->direct, wr && op->dsync && op->via == V_PSYNC, wr, &fd);
	pthread_mutex_unlock(&cache_mu);
	if (e)
		return set_ret(r, -e);
	struct buffer b = { 0 };
	if ((e = buffer_prepare(&b, op, wr)))
		return set_ret(r, -e);
	struct iovec iov[64];
	int niov = cut_iovecs(iov, b.p, len, op->vectors);
	int flags = (op->nowait ? RWF_NOWAIT : 0) | (wr && op->dsync ? RWF_DSYNC : 0);
	int64_t ret, t0 = now_us();
	switch (op->via) {
	case V_PSYNC:
		ret = wr ? pwrite(fd, b.p, len, op->offset) : pread(fd, b.p, len, op->offset);
		break;
	case V_PVEC:
		ret = wr ? pwritev2(fd, iov, niov, op->offset, flags) : preadv2(fd, iov, niov, op->offset, flags);
		break;
	default:
		ret = uring_rw(ts, wr, fd, iov, niov, op->offset, flags);
	}
	if (ret < 0 && op->via != V_URING)
		ret = -errno;
	r->us = now_us() - t0;
	set_ret(r, ret);
	if (!wr && ret > 0 && (r->data = malloc((size_t)ret)))
		memcpy(r->data, b.p, (size_t)ret);
	buffer_release(&b);
}

struct mem_args { uint8_t *p, *copy; size_t n; const struct op *op; };

static void store_fn(void *a)
{
	struct mem_args *m = a;
	pattern_fill(m->p, m->n, SEED, (uint32_t)m->op->id, m->op->offset);
}

static void load_fn(void *a)
{
	struct mem_args *m = a;
	memcpy(m->copy, m->p, m->n);
}

static void do_mmap_access(struct tstate *ts, const struct op *op, struct result *r)
{
	struct mapent *m;
	pthread_mutex_lock(&cache_mu);
	int e = get_map(ts, op->obj, (size_t)op->map_length, &m);
	pthread_mutex_unlock(&cache_mu);
	if (e)
		return set_ret(r, -e);
	bool store = op->kind == K_MMAP_WRITE;
	struct mem_args a = { .p = m->addr + op->offset, .n = (size_t)op->length, .op = op };
	if (!store && !(a.copy = malloc(a.n)))
		return set_ret(r, -ENOMEM);
	int sig = guarded(store ? store_fn : load_fn, &a);
	if (sig) {
		r->ret = -1;
		r->sig = sig;
		free(a.copy);
	} else {
		r->ret = op->length;
		r->data = a.copy;
	}
}

static void noise_fill(uint8_t *p, size_t n, uint32_t seed, int64_t op)
{
	uint64_t s = ((uint64_t)seed << 32 | (uint32_t)op) ^ 0x6a09e667f3bcc909ULL;
	for (size_t k = 0; k < n; k += 8) {
		uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(p + k, &z, n - k < 8 ? n - k : 8);
	}
}

static int64_t write_all(int fd, const uint8_t *p, size_t n, int64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = pwrite(fd, p + done, n - done, off + (int64_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		done += (size_t)k;
	}
	return 0;
}

static void do_corrupt(const struct op *op, struct result *r)
{
	size_t n = (size_t)op->length;
	bool aligned = op->offset % 512 == 0 && n % 512 == 0;
	void *buf;
	int e = posix_memalign(&buf, PAGE, n);
	if (e)
		return set_ret(r, -e);
	noise_fill(buf, n, SEED, op->id);
	int fd = aligned ? open(obj_path[op->obj], O_RDWR | O_CLOEXEC | O_DIRECT) : -1;
	int64_t rc = fd >= 0 ? write_all(fd, buf, n, op->offset) : -EINVAL;
	if (rc == -EINVAL) {
		if (fd >= 0)
			close(fd);
		fd = open(obj_path[op->obj], O_RDWR | O_CLOEXEC);
		rc = fd >= 0 ? write_all(fd, buf, n, op->offset) : -errno;
	}
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	set_ret(r, rc);
}

static int drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int e = write(fd, "3\n", 2) == 2 ? 0 : errno;
	close(fd);
	return e;
}

static void do_exec(const struct op *op, struct result *r)
{
	static char bufs[64][4096];
	static pthread_mutex_t exec_mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&exec_mu);
	if (op->close_prefix && subst(bufs[0], sizeof bufs[0], op->close_prefix))
		close_prefix(bufs[0]);
	r->ret = 0;
	for (int k = 0; k < op->nargv; k++) {
		char *argv[64];
		int n = 0;
		for (const char *const *a = op->argv[k]; *a && n < 63; a++, n++) {
			if (!subst(bufs[n], sizeof bufs[n], *a)) {
				r->ret = -1;
				r->err = E2BIG;
				pthread_mutex_unlock(&exec_mu);
				return;
			}
			argv[n] = bufs[n];
		}
		argv[n] = NULL;
		pthread_mutex_lock(&out_mu);
		printf("  op %d runs:", op->id);
		for (int i = 0; i < n; i++)
			printf(" %s", argv[i]);
		printf("\n");
		pthread_mutex_unlock(&out_mu);
		pid_t pid;
		int st;
		if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			/* As the executor reports it: -1 with the failing command (errno name EEXEC there). */
			r->ret = -1;
			r->err = ECHILD;
			break;
		}
	}
	pthread_mutex_unlock(&exec_mu);
}

static void run_op(struct tstate *ts, const struct op *op, struct result *r)
{
	memset(r, 0, sizeof *r);
	int fd, e, rc = 0;
	switch (op->kind) {
	case K_READ:
	case K_WRITE:
		return do_data(ts, op, r);
	case K_MMAP_READ:
	case K_MMAP_WRITE:
		return do_mmap_access(ts, op, r);
	case K_BARRIER:
		pthread_barrier_wait(&barrier);
		return;
	case K_SLEEP:
		usleep((useconds_t)op->length * 1000);
		return;
	case K_DROP_CACHES:
		return set_ret(r, -drop_caches());
	case K_CORRUPT:
		return do_corrupt(op, r);
	case K_EXEC:
		return do_exec(op, r);
	case K_MSYNC: {
		struct mapent *m;
		pthread_mutex_lock(&cache_mu);
		e = get_map(ts, op->obj, (size_t)op->map_length, &m);
		pthread_mutex_unlock(&cache_mu);
		if (e)
			return set_ret(r, -e);
		int flags = op->mode == 0 ? MS_SYNC : op->mode == 1 ? MS_ASYNC : MS_INVALIDATE;
		return set_ret(r, msync(m->addr, m->len, flags) < 0 ? -errno : 0);
	}
	default:
		break;
	}
	bool need_write = op->kind == K_FALLOCATE || op->kind == K_TRUNCATE || op->kind == K_DISCARD;
	pthread_mutex_lock(&cache_mu);
	e = get_fd(ts, op->obj, false, false, need_write, &fd);
	pthread_mutex_unlock(&cache_mu);
	if (e)
		return set_ret(r, -e);
	uint64_t range[2] = { (uint64_t)op->offset, (uint64_t)op->length };
	switch (op->kind) {
	case K_FALLOCATE: rc = fallocate(fd, (int)op->mode, op->offset, op->length); break;
	case K_TRUNCATE: rc = ftruncate(fd, op->size); break;
	case K_FSYNC: rc = op->mode ? fdatasync(fd) : fsync(fd); break;
	case K_SYNC_FILE_RANGE: rc = sync_file_range(fd, op->offset, op->length, (unsigned)op->mode); break;
	case K_FLUSH: rc = ioctl(fd, BLKFLSBUF, 0); break;
	case K_DISCARD: rc = ioctl(fd, op->mode == 1 ? BLKZEROOUT : op->mode == 2 ? BLKSECDISCARD : BLKDISCARD, range); break;
	case K_LOOP_SET_DIRECT_IO: rc = ioctl(fd, LOOP_SET_DIRECT_IO, op->on ? 1UL : 0UL); break;
	case K_LOOP_SET_BLOCK_SIZE: rc = ioctl(fd, LOOP_SET_BLOCK_SIZE, (unsigned long)op->size); break;
	default: rc = -1; errno = EINVAL;
	}
	set_ret(r, rc < 0 ? -errno : 0);
}

static void *thread_main(void *arg)
{
	struct tstate *ts = arg;
	for (int k = 0; k < THREAD_LEN[ts->id]; k++) {
		const struct op *op = &OPS[THREAD_OPS[ts->id][k]];
		struct result r;
		run_op(ts, op, &r);
		pthread_mutex_lock(&out_mu);
		check(op, &r);
		fflush(stdout);
		pthread_mutex_unlock(&out_mu);
		free(r.data);
	}
	return NULL;
}

/* ------------------------------------------------------------ reading back */

static int64_t object_size(int fd, bool is_file)
{
	if (is_file) {
		struct stat st;
		return fstat(fd, &st) < 0 ? -1 : st.st_size;
	}
	uint64_t sz;
	return ioctl(fd, BLKGETSIZE64, &sz) < 0 ? -1 : (int64_t)sz;
}

static bool range_may_error(const struct piece *pieces, int npieces, int64_t s, int64_t e)
{
	for (int k = 0; k < npieces; k++)
		if (pieces[k].start < e && s < pieces[k].end) {
			bool err = pieces[k].must_error;
			for (int j = 0; j < pieces[k].nsrc; j++)
				err |= pieces[k].src[j].kind == S_ERROR || pieces[k].src[j].kind == S_ANY;
			if (!err)
				return false;
		}
	return true;
}

static void final_check(const struct final *f)
{
	const char *name = OBJ_NAME[f->obj];
	int fd = open(obj_path[f->obj], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("final: cannot open '%s' (%s): %s\n", name, obj_path[f->obj], strerror(errno));
		return;
	}
	int64_t size = object_size(fd, f->is_file);
	bool size_ok = !f->is_file;
	for (int k = 0; k < f->nsizes; k++)
		size_ok |= f->sizes[k] == size;
	printf("final: '%s' is %" PRId64 " bytes\n", name, size);
	if (!size_ok) {
		char allowed[256] = "";
		for (int k = 0, used = 0; k < f->nsizes; k++)
			used += snprintf(allowed + used, sizeof allowed - (size_t)used, "%s%" PRId64, k ? " or " : "", f->sizes[k]);
		divergence("'%s' ends %" PRId64 " bytes long; the model allows %s", name, size, allowed);
	}
	const size_t CHUNK = 1 << 20;
	uint8_t *buf = malloc(CHUNK);
	int before = divergences;
	for (int k = 0; k < f->nranges && buf && divergences == before; k++) {
		int64_t end = f->ranges[k][1] < size ? f->ranges[k][1] : size;
		for (int64_t pos = f->ranges[k][0]; pos < end && divergences == before;) {
			size_t n = end - pos < (int64_t)CHUNK ? (size_t)(end - pos) : CHUNK;
			ssize_t got = pread(fd, buf, n, pos);
			if (got < 0) {
				int err = errno;
				if (!range_may_error(f->pieces, f->npieces, pos, pos + (int64_t)n))
					divergence("reading '%s' back at offset %" PRId64 " failed with %s; the model allows data there", name, pos, ename(err));
				pos += (int64_t)n;
				continue;
			}
			if (got == 0)
				break;
			check_data(name, f->pieces, f->npieces, buf, got, pos);
			pos += got;
		}
	}
	free(buf);
	close(fd);
}

/* ------------------------------------------------------------ main */

static int usage(const char *prog)
{
	fprintf(stderr, "usage: %s %s\n       %s --pattern SEED OP ADDR LEN\n", prog, USAGE_OBJS, prog);
	for (int k = 0; k < NOBJ; k++)
		fprintf(stderr, "  %s\n", OBJ_DESCR[k]);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--pattern")) {
		uint32_t seed = (uint32_t)strtoul(argv[2], NULL, 0), opn = (uint32_t)strtoul(argv[3], NULL, 0);
		int64_t addr = strtoll(argv[4], NULL, 0), len = strtoll(argv[5], NULL, 0);
		for (int64_t i = 0; i < len; i++)
			printf("%02x", pattern_byte(seed, opn, addr + i));
		printf("\n");
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '@') {
			const char *eq = strchr(argv[i], '=');
			int k = 0;
			for (; eq && k < NVARS; k++)
				if ((size_t)(eq - argv[i] - 1) == strlen(VAR_NAME[k]) && !strncmp(argv[i] + 1, VAR_NAME[k], (size_t)(eq - argv[i] - 1)))
					break;
			if (!eq || k >= NVARS) {
				fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
				return usage(argv[0]);
			}
			var_value[k] = eq + 1;
			continue;
		}
		const char *eq = strchr(argv[i], '=');
		int k = 0;
		for (; eq && k < NOBJ; k++)
			if ((size_t)(eq - argv[i]) == strlen(OBJ_NAME[k]) && !strncmp(argv[i], OBJ_NAME[k], (size_t)(eq - argv[i])))
				break;
		if (!eq || k >= NOBJ) {
			fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
			return usage(argv[0]);
		}
		obj_path[k] = eq + 1;
	}
	for (int k = 0; k < NOBJ; k++)
		if (!obj_path[k]) {
			fprintf(stderr, "%s: missing %s=PATH\n", argv[0], OBJ_NAME[k]);
			return usage(argv[0]);
		}
	for (int k = 0; k < NVARS; k++)
		if (!var_value[k]) {
			fprintf(stderr, "%s: missing @%s=VALUE\n", argv[0], VAR_NAME[k]);
			return usage(argv[0]);
		}
	struct utsname u;
	if (uname(&u) == 0)
		printf("kernel: %s %s %s\n", u.sysname, u.release, u.version);
	/* The block sizes the kernel picked: which tables apply. */
	variant = -1;
	for (int v = 0; v < NVARIANTS && variant < 0; v++) {
		bool match = true;
		for (int k = 0; k < NGEO; k++) {
			int fd = open(obj_path[GEO_OBJ[k]], O_RDONLY | O_CLOEXEC), lbs = 0;
			if (fd < 0 || ioctl(fd, BLKSSZGET, &lbs) < 0)
				lbs = -1;
			if (fd >= 0)
				close(fd);
			match &= lbs == GEO_LBS[v][k];
		}
		if (match)
			variant = v;
	}
	if (variant < 0) {
		variant = 0;
		tables_on = false;
		snprintf(tables_off_why, sizeof tables_off_why, "the devices have logical block sizes the tables were not made for");
		printf("nothing will be checked: %s\n", tables_off_why);
	}
	for (int k = 0; k < NGEO; k++)
		printf("%s: logical block size %" PRId64 "\n", OBJ_NAME[GEO_OBJ[k]], GEO_LBS[variant][k]);
	struct sigaction sa = { .sa_handler = on_fault, .sa_flags = SA_NODEFER };
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pthread_barrier_init(&barrier, NULL, NTHREADS)) {
		fprintf(stderr, "cannot make the barrier\n");
		return 3;
	}
	pthread_t th[NTHREADS];
	for (int t = 0; t < NTHREADS; t++) {
		tstates[t].id = t;
		if (pthread_create(&th[t], NULL, thread_main, &tstates[t])) {
			fprintf(stderr, "cannot start thread %d\n", t);
			return 3;
		}
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < NTHREADS; t++) {
		for (int k = 0; k < tstates[t].nfds; k++)
			close(tstates[t].fds[k].fd);
		for (int k = 0; k < tstates[t].nmaps; k++) {
			munmap(tstates[t].maps[k].addr, tstates[t].maps[k].len);
			close(tstates[t].maps[k].fd);
		}
		if (tstates[t].ring_ready)
			io_uring_queue_exit(&tstates[t].ring);
	}
	if (FINALS[variant][0].obj >= 0) {
		if (!tables_on)
			printf("final content: not checked (%s)\n", tables_off_why);
		else {
			int e = drop_caches();
			if (e)
				printf("drop caches: %s (final reads may come from the page cache)\n", strerror(e));
			for (int k = 0; FINALS[variant][k].obj >= 0; k++)
				final_check(&FINALS[variant][k]);
		}
	}
	if (divergences) {
		printf("RESULT: %d divergence%s from what the model allows\n", divergences, divergences == 1 ? "" : "s");
		return 1;
	}
	if (!tables_on)
		printf("RESULT: no divergence up to where checking stopped (%s)\n", tables_off_why);
	else
		printf("RESULT: every op did what the model allows\n");
	return 0;
}