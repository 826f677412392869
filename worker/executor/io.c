/*
 * The ops: one function per kind, each reporting the syscall's return (bytes
 * for data ops, 0 otherwise), the errno name on failure, and the time spent
 * in the syscall itself (buffer preparation and decoding are not timed).
 * A failure to prepare an op (open, mmap of a buffer) is reported as the
 * op's errno too: it is what the kernel answered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "buffers.h"
#include "guard.h"
#include "pattern.h"
#include "runtime.h"
#include "spawn.h"
#include "util.h"

/* ------------------------------------------------------------ results */

static void set_errno(struct op_result *r, int e)
{
	r->ret = -1;
	r->errname = errno_name(e);
}

/* ret < 0 is -errno (the io_uring convention, used by every submission path here). */
static void set_ret(struct op_result *r, int64_t ret)
{
	if (ret < 0)
		set_errno(r, (int)-ret);
	else
		r->ret = ret;
}

static int64_t us_since(int64_t t0)
{
	return (now_ns() - t0) / 1000;
}

/* ------------------------------------------------------------ fd cache */

static bool grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 8;
	void *p = realloc(*v, c * size);
	if (!p)
		return false;
	*v = p;
	*cap = c;
	return true;
}

/*
 * An fd for path, cached per (path, O_DIRECT, O_DSYNC). Opened O_RDWR; an op
 * that only reads falls back to O_RDONLY (a read-only loop device). Never
 * O_CREAT: a missing file is an observation (ENOENT). Caller holds cache_mu.
 */
static int get_fd(struct worker *w, const char *path, bool direct, bool dsync, bool need_write, int *out)
{
	for (size_t k = 0; k < w->nfds; k++) {
		struct fd_entry *f = &w->fds[k];
		if (f->direct == direct && f->dsync == dsync && (f->writable || !need_write) && strcmp(f->path, path) == 0) {
			*out = f->fd;
			return 0;
		}
	}
	int flags = O_CLOEXEC | (direct ? O_DIRECT : 0) | (dsync ? O_DSYNC : 0);
	bool writable = true;
	int fd = open(path, O_RDWR | flags);
	if (fd < 0 && !need_write && (errno == EROFS || errno == EACCES || errno == EPERM)) {
		writable = false;
		fd = open(path, O_RDONLY | flags);
	}
	if (fd < 0)
		return errno;
	if (!grow((void **)&w->fds, &w->capfds, w->nfds, sizeof *w->fds)) {
		close(fd);
		return ENOMEM;
	}
	char *p = strdup(path);
	if (!p) {
		close(fd);
		return ENOMEM;
	}
	w->fds[w->nfds++] = (struct fd_entry){ .path = p, .direct = direct, .dsync = dsync, .writable = writable, .fd = fd };
	*out = fd;
	return 0;
}

static void unmap_entry(struct map_entry *m)
{
	munmap(m->addr, m->len);
	close(m->fd);
	free(m->path);
}

/* The thread's shared mapping of [0, len) of path, made on first use. Caller holds cache_mu. */
static int get_map(struct worker *w, const char *path, size_t len, struct map_entry **out)
{
	for (size_t k = 0; k < w->nmaps; k++) {
		struct map_entry *m = &w->maps[k];
		if (strcmp(m->path, path) != 0)
			continue;
		if (m->len == len) {
			*out = m;
			return 0;
		}
		/* The plan names one window per file; a different one replaces the mapping (dirty pages stay in the page cache). */
		unmap_entry(m);
		w->maps[k] = w->maps[--w->nmaps];
		break;
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	void *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		int e = errno;
		close(fd);
		return e;
	}
	char *p = strdup(path);
	if (!p || !grow((void **)&w->maps, &w->capmaps, w->nmaps, sizeof *w->maps)) {
		free(p);
		munmap(a, len);
		close(fd);
		return ENOMEM;
	}
	w->maps[w->nmaps] = (struct map_entry){ .path = p, .fd = fd, .addr = a, .len = len };
	*out = &w->maps[w->nmaps++];
	return 0;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void caches_close_prefix(const char *prefix)
{
	for (size_t t = 0; t < g_run.nworkers; t++) {
		struct worker *w = &g_run.workers[t];
		pthread_mutex_lock(&w->cache_mu);
		for (size_t k = 0; k < w->nfds;) {
			if (has_prefix(w->fds[k].path, prefix)) {
				close(w->fds[k].fd);
				free(w->fds[k].path);
				w->fds[k] = w->fds[--w->nfds];
			} else
				k++;
		}
		for (size_t k = 0; k < w->nmaps;) {
			if (has_prefix(w->maps[k].path, prefix)) {
				unmap_entry(&w->maps[k]);
				w->maps[k] = w->maps[--w->nmaps];
			} else
				k++;
		}
		pthread_mutex_unlock(&w->cache_mu);
	}
}

void worker_release(struct worker *w)
{
	pthread_mutex_lock(&w->cache_mu);
	for (size_t k = 0; k < w->nfds; k++) {
		close(w->fds[k].fd);
		free(w->fds[k].path);
	}
	w->nfds = 0;
	for (size_t k = 0; k < w->nmaps; k++)
		unmap_entry(&w->maps[k]);
	w->nmaps = 0;
	pthread_mutex_unlock(&w->cache_mu);
	if (w->ring_ready && !w->ring_abandoned) {
		io_uring_queue_exit(&w->ring);
		w->ring_ready = false;
	}
	heap_cache_free(&w->heap);
}

/* ------------------------------------------------------------ read / write */

/* iovecLengths in model/semantics/rules.ts: equal parts, the last takes the remainder. */
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

/* One READV/WRITEV on the thread's ring; the result or -errno. */
static int64_t uring_rw(struct worker *w, bool write, int fd, const struct iovec *iov, int n, int64_t off, int flags, bool *abandoned)
{
	if (w->ring_abandoned)
		return -EBUSY;
	if (!w->ring_ready) {
		int e = io_uring_queue_init(8, &w->ring, 0);
		if (e < 0)
			return e;
		w->ring_ready = true;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	if (!sqe)
		return -EBUSY;
	if (write)
		io_uring_prep_writev(sqe, fd, iov, (unsigned)n, (uint64_t)off);
	else
		io_uring_prep_readv(sqe, fd, iov, (unsigned)n, (uint64_t)off);
	sqe->rw_flags = flags;
	int s = io_uring_submit(&w->ring);
	if (s < 0)
		return s;
	struct io_uring_cqe *cqe;
	for (;;) {
		int e = io_uring_wait_cqe(&w->ring, &cqe);
		if (e == 0)
			break;
		if (e == -EINTR || e == -EAGAIN) {
			if (atomic_load(&g_abort)) {
				/* The kernel may still write into the buffer: keep it and the ring as they are. */
				w->ring_abandoned = true;
				*abandoned = true;
				return -EINTR;
			}
			continue;
		}
		return e;
	}
	int res = cqe->res;
	io_uring_cqe_seen(&w->ring, cqe);
	return res;
}

struct decode_args {
	const uint8_t *p;
	size_t n;
	int64_t addr;
	struct runs *out;
};

static void decode_fn(void *a)
{
	struct decode_args *d = a;
	struct decoder dec;
	decoder_init(&dec, &g_run.cands, d->out, d->addr);
	decode_feed(&dec, d->p, d->n, d->n, d->addr, d->addr + (int64_t)d->n);
}

/* Decode what a read returned; runs are relative to the op's offset. */
static void decode_read(const struct op *op, const uint8_t *p, size_t n, struct op_result *r)
{
	struct decode_args d = { .p = p, .n = n, .addr = op->offset, .out = &r->data };
	r->has_data = true;
	/* A buffer that maps a file can fault while we look at it; keep what was decoded. */
	int sig = guarded(decode_fn, &d);
	if (sig)
		fprintf(stderr, "op %lld: signal %d while decoding the buffer\n", (long long)op->id, sig);
}

static void do_data(struct worker *w, const struct op *op, struct op_result *r)
{
	bool wr = op->kind == OP_WRITE;
	size_t len = (size_t)op->length;
	/* psync has no per-call flags: dsync is O_DSYNC on the fd. */
	bool dsync_open = wr && op->dsync && op->via == VIA_PSYNC;
	int fd, e;
	if ((e = get_fd(w, op->path, op->direct, dsync_open, wr, &fd)))
		return set_errno(r, e);
	struct io_buffer b;
	if ((e = buffer_prepare(&b, &op->buf, op->buf.path, len, wr, g_run.plan->seed, (uint32_t)op->id, op->offset, &w->heap)))
		return set_errno(r, e);
	struct iovec iov[1024];
	int niov = cut_iovecs(iov, b.p, len, op->vectors);
	int flags = (op->nowait ? RWF_NOWAIT : 0) | (wr && op->dsync ? RWF_DSYNC : 0);
	bool abandoned = false;
	int64_t ret;

	int64_t t0 = now_ns();
	switch (op->via) {
	case VIA_PSYNC:
		ret = wr ? pwrite(fd, b.p, len, op->offset) : pread(fd, b.p, len, op->offset);
		break;
	case VIA_PVEC:
		ret = wr ? pwritev2(fd, iov, niov, op->offset, flags) : preadv2(fd, iov, niov, op->offset, flags);
		break;
	case VIA_URING:
		ret = uring_rw(w, wr, fd, iov, niov, op->offset, flags, &abandoned);
		break;
	default:
		ret = -1;
		errno = EINVAL;
	}
	if (ret < 0 && op->via != VIA_URING)
		ret = -errno;
	r->us = us_since(t0);

	if (abandoned) {
		/* The kernel may still use the buffer: keep it (and the heap cache) as it is. */
		r->abandoned = true;
		w->heap.p = NULL;
		w->heap.size = 0;
		return;
	}
	set_ret(r, ret);
	if (!wr && ret > 0)
		decode_read(op, b.p, (size_t)ret, r);
	buffer_release(&b);
}

/* ------------------------------------------------------------ mappings */

struct mem_args {
	uint8_t *p;
	size_t n;
	const struct op *op;
	uint8_t *copy;
};

static void store_fn(void *a)
{
	struct mem_args *m = a;
	pattern_fill(m->p, m->n, g_run.plan->seed, (uint32_t)m->op->id, m->op->offset);
}

static void load_fn(void *a)
{
	struct mem_args *m = a;
	memcpy(m->copy, m->p, m->n);
}

static const char *signal_name(int sig)
{
	return sig == SIGBUS ? "SIGBUS" : "SIGSEGV";
}

static void do_mmap_access(struct worker *w, const struct op *op, struct op_result *r)
{
	struct map_entry *m;
	int e = get_map(w, op->path, (size_t)op->map_length, &m);
	if (e)
		return set_errno(r, e);
	bool store = op->kind == OP_MMAP_WRITE;
	struct mem_args a = { .p = m->addr + op->offset, .n = (size_t)op->length, .op = op };
	if (!store && !(a.copy = malloc(a.n)))
		return set_errno(r, ENOMEM);
	int64_t t0 = now_ns();
	int sig = guarded(store ? store_fn : load_fn, &a);
	r->us = us_since(t0);
	if (sig) {
		r->ret = -1;
		r->signal = signal_name(sig);
	} else {
		r->ret = op->length;
		if (!store)
			decode_read(op, a.copy, a.n, r);
	}
	free(a.copy);
}

static void do_msync(struct worker *w, const struct op *op, struct op_result *r)
{
	struct map_entry *m;
	int e = get_map(w, op->path, (size_t)op->map_length, &m);
	if (e)
		return set_errno(r, e);
	/* 'invalidate' is MS_INVALIDATE alone: Linux accepts it, and it is a distinct path from MS_SYNC. */
	int flags = op->msync_mode == MSYNC_SYNC ? MS_SYNC : op->msync_mode == MSYNC_ASYNC ? MS_ASYNC : MS_INVALIDATE;
	int64_t t0 = now_ns();
	int rc = msync(m->addr, m->len, flags);
	r->us = us_since(t0);
	set_ret(r, rc < 0 ? -errno : 0);
}

/* ------------------------------------------------------------ fd ops */

/* Run one syscall on the cached buffered fd of the op's path; 0 or -errno. */
static void on_fd(struct worker *w, const struct op *op, bool need_write, struct op_result *r)
{
	int fd, e;
	if ((e = get_fd(w, op->path, false, false, need_write, &fd)))
		return set_errno(r, e);
	uint64_t range[2] = { (uint64_t)op->offset, (uint64_t)op->length };
	int64_t t0 = now_ns();
	int rc;
	switch (op->kind) {
	case OP_FALLOCATE:
		rc = fallocate(fd, (int)op->mode, op->offset, op->length);
		break;
	case OP_TRUNCATE:
		rc = ftruncate(fd, op->size);
		break;
	case OP_FSYNC:
		rc = op->data_only ? fdatasync(fd) : fsync(fd);
		break;
	case OP_SYNC_FILE_RANGE:
		rc = sync_file_range(fd, op->offset, op->length, (unsigned)op->flags);
		break;
	case OP_FLUSH:
		rc = ioctl(fd, BLKFLSBUF, 0);
		break;
	case OP_DISCARD: {
		unsigned long req = op->discard_mode == DISCARD_ZEROOUT ? BLKZEROOUT
				    : op->discard_mode == DISCARD_SECURE ? BLKSECDISCARD
									: BLKDISCARD;
		rc = ioctl(fd, req, range);
		break;
	}
	case OP_LOOP_SET_DIRECT_IO:
		rc = ioctl(fd, LOOP_SET_DIRECT_IO, op->on ? 1UL : 0UL);
		break;
	case OP_LOOP_SET_BLOCK_SIZE:
		rc = ioctl(fd, LOOP_SET_BLOCK_SIZE, (unsigned long)op->size);
		break;
	default:
		rc = -1;
		errno = EINVAL;
	}
	r->us = us_since(t0);
	set_ret(r, rc < 0 ? -errno : 0);
}

/* ------------------------------------------------------------ the rest */

int drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int e = write(fd, "3\n", 2) == 2 ? 0 : errno;
	close(fd);
	return e;
}

/* Deterministic noise for corrupt: splitmix64 from (seed, op). */
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

/* Noise written behind the back of the layers above, through its own fd, and made durable. */
static void do_corrupt(const struct op *op, struct op_result *r)
{
	size_t n = (size_t)op->length;
	bool aligned = op->offset % 512 == 0 && n % 512 == 0;
	void *buf;
	int e = posix_memalign(&buf, 4096, n);
	if (e)
		return set_errno(r, e);
	noise_fill(buf, n, g_run.plan->seed, op->id);
	int64_t t0 = now_ns();
	int fd = aligned ? open(op->path, O_RDWR | O_CLOEXEC | O_DIRECT) : -1;
	int64_t rc = fd >= 0 ? write_all(fd, buf, n, op->offset) : -EINVAL;
	if (rc == -EINVAL) {
		/* No O_DIRECT here (or not at this alignment): the page cache path, then fdatasync. */
		if (fd >= 0)
			close(fd);
		fd = open(op->path, O_RDWR | O_CLOEXEC);
		rc = fd >= 0 ? write_all(fd, buf, n, op->offset) : -errno;
	}
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	r->us = us_since(t0);
	free(buf);
	set_ret(r, rc);
}

static void do_exec(const struct op *op, struct op_result *r)
{
	if (op->close_prefix)
		caches_close_prefix(op->close_prefix);
	int64_t t0 = now_ns();
	r->ret = 0;
	for (size_t k = 0; k < op->nargvs; k++) {
		struct spawn_result sr;
		/* No own timeout: the op timeout (watchdog) stops it through run_should_stop. */
		int ex = spawn_run(op->argvs[k].v, NULL, 0, 0, run_should_stop, &sr);
		if (ex != 0) {
			fprintf(stderr, "op %lld: '%s' exited %d: %s\n", (long long)op->id, op->argvs[k].v[0], ex, sr.err);
			r->ret = -1;
			r->errname = "EEXEC";
		}
		/* Killed because the run stops: not the command's answer. */
		r->abandoned = sr.stopped;
		spawn_result_free(&sr);
		if (ex != 0)
			break;
	}
	r->us = us_since(t0);
}

static void do_sleep(const struct op *op, struct op_result *r)
{
	int64_t t0 = now_ns();
	int64_t until = t0 + op->ms * 1000000;
	for (int64_t now = t0; now < until && !atomic_load(&g_abort); now = now_ns()) {
		int64_t left = until - now;
		if (left > 100000000)
			left = 100000000; /* wake now and then to see an abort */
		struct timespec ts = { .tv_sec = 0, .tv_nsec = left };
		nanosleep(&ts, NULL);
	}
	r->us = us_since(t0);
	r->ret = 0;
	/* Cut short by an abort: it did not sleep as asked, so it reports nothing. */
	r->abandoned = now_ns() < until;
}

void run_op(struct worker *w, const struct op *op, struct op_result *r)
{
	memset(r, 0, sizeof *r);
	switch (op->kind) {
	case OP_BARRIER: {
		int64_t t0 = now_ns();
		if (gbarrier_wait(&g_run.barrier) < 0)
			r->abandoned = true;
		r->us = us_since(t0);
		return;
	}
	case OP_SLEEP:
		return do_sleep(op, r);
	case OP_EXEC:
		return do_exec(op, r);
	case OP_DROP_CACHES: {
		int64_t t0 = now_ns();
		int e = drop_caches();
		r->us = us_since(t0);
		return e ? set_errno(r, e) : (void)(r->ret = 0);
	}
	case OP_CORRUPT:
		return do_corrupt(op, r);
	default:
		break;
	}
	/* Ops on the thread's cached fds and mappings: an exec in another thread waits until this one is done. */
	pthread_mutex_lock(&w->cache_mu);
	switch (op->kind) {
	case OP_READ:
	case OP_WRITE:
		do_data(w, op, r);
		break;
	case OP_MMAP_WRITE:
	case OP_MMAP_READ:
		do_mmap_access(w, op, r);
		break;
	case OP_MSYNC:
		do_msync(w, op, r);
		break;
	case OP_FALLOCATE:
	case OP_TRUNCATE:
	case OP_DISCARD:
		on_fd(w, op, true, r);
		break;
	default:
		on_fd(w, op, false, r);
	}
	pthread_mutex_unlock(&w->cache_mu);
}
