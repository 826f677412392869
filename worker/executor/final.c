/*
 * Final reads, after the threads joined and the caches were dropped: files
 * whole (size from fstat) unless ranges are given, block devices the given
 * ranges (the whole device when none are). Read in 1 MiB chunks, decoded as
 * one stream per range (runs continue across chunks; each chunk is read with
 * a look-ahead so the decoder sees what it would see in one buffer). A chunk
 * that fails is read again in pieces (4 KiB, or a block device's logical
 * block size when read directly: a 512-byte sector readable beside one that
 * is not reads as data); pieces that still fail become 'error' runs.
 *
 * Block devices are read with O_DIRECT (look-ahead: the next 4 KiB, read
 * again with the next chunk): the same bytes as through the emptied page
 * cache, which a direct read also writes back first, without filling the
 * cache and copying every byte once more, which under TCG was most of a
 * case on a 64 MiB disk. A device that refuses a direct read (alignment)
 * is read through the page cache, as files are.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
#include "util.h"

#define CHUNK (1 << 20)
#define LOOK 8
#define PIECE 4096
/* Look-ahead of a direct read: one block of the largest logical block size the case language has. */
#define DIRECT_LOOK 4096

/* Bytes read (fewer only at EOF), or -errno when a read failed. */
static int64_t pread_full(int fd, uint8_t *p, size_t n, int64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = pread(fd, p + done, n - done, off + (int64_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		done += (size_t)k;
	}
	return (int64_t)done;
}

/* Chunk [pos, pos+n) failed as a whole: decode it piece by piece. false at EOF. */
static bool read_pieces(int fd, size_t piece, uint8_t *buf, struct decoder *d, int64_t pos, size_t n, int64_t end)
{
	size_t good_from = 0; /* start of the run of readable pieces not yet decoded */
	for (size_t k = 0; k < n; k += piece) {
		size_t len = n - k < piece ? n - k : piece;
		int64_t got = pread_full(fd, buf + k, len, pos + (int64_t)k);
		if (got == (int64_t)len)
			continue;
		if (k > good_from)
			decode_feed(d, buf + good_from, k - good_from, k - good_from, pos + (int64_t)good_from, end);
		if (got >= 0) { /* EOF inside the chunk */
			if (got > 0)
				decode_feed(d, buf + k, (size_t)got, (size_t)got, pos + (int64_t)k, pos + (int64_t)k + got);
			return false;
		}
		decode_error(d, pos + (int64_t)k, (int64_t)len);
		good_from = k + len;
	}
	if (n > good_from)
		decode_feed(d, buf + good_from, n - good_from, n - good_from, pos + (int64_t)good_from, end);
	return true;
}

/* Where a range is read from: a direct descriptor while the device takes direct reads, else the buffered one. */
struct source {
	int fd;
	int dfd; /* -1 when not reading directly */
	size_t dpiece; /* the device's logical block size: what a direct read can tell apart */
};

static void read_range(struct source *src, uint8_t *buf, struct decoder *d, int64_t start, int64_t end)
{
	for (int64_t pos = start; pos < end && !g_stop; pos += CHUNK) {
		size_t n = end - pos < CHUNK ? (size_t)(end - pos) : CHUNK;
		size_t look = src->dfd >= 0 ? DIRECT_LOOK : LOOK;
		size_t want = end - pos < (int64_t)(CHUNK + look) ? (size_t)(end - pos) : CHUNK + look;
		int fd = src->dfd >= 0 ? src->dfd : src->fd;
		int64_t got = pread_full(fd, buf, want, pos);
		if (got == -EINVAL && src->dfd >= 0) { /* not aligned for this device: the page cache from here on */
			close(src->dfd);
			src->dfd = -1;
			pos -= CHUNK;
			continue;
		}
		if (got < 0) {
			if (!read_pieces(fd, src->dfd >= 0 ? src->dpiece : PIECE, buf, d, pos, n, end))
				return;
			continue;
		}
		if ((size_t)got < n) { /* EOF before the range ended (the object shrank) */
			if (got > 0)
				decode_feed(d, buf, (size_t)got, (size_t)got, pos, pos + got);
			return;
		}
		decode_feed(d, buf, n, (size_t)got, pos, end);
	}
}

static void emit_final(const struct final_read *f, int64_t size, const struct runs *runs, int64_t (*ranges)[2], size_t nranges)
{
	struct jw w;
	jw_init(&w);
	jw_obj_begin(&w);
	jw_kstr(&w, "ev", "final");
	jw_kstr(&w, "id", f->id);
	jw_kint(&w, "size", size);
	jw_key(&w, "extents");
	runs_to_json(&w, runs);
	jw_key(&w, "ranges");
	jw_arr_begin(&w);
	for (size_t k = 0; k < nranges; k++) {
		jw_arr_begin(&w);
		jw_int(&w, ranges[k][0]);
		jw_int(&w, ranges[k][1]);
		jw_arr_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	emit(&w);
	jw_free(&w);
}

static int64_t object_size(int fd, bool block)
{
	if (block) {
		uint64_t s;
		return ioctl(fd, BLKGETSIZE64, &s) < 0 ? -errno : (int64_t)s;
	}
	struct stat st;
	return fstat(fd, &st) < 0 ? -errno : (int64_t)st.st_size;
}

void final_read(const struct final_read *f, const struct cand_set *cs)
{
	struct runs runs = { 0 };
	int64_t whole[1][2];
	int64_t(*ranges)[2] = f->ranges;
	size_t nranges = f->nranges;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	int64_t size = fd < 0 ? -errno : object_size(fd, f->block);
	if (size < 0) {
		fprintf(stderr, "final %s: %s: %s\n", f->id, f->path, strerror((int)-size));
		/* A device that cannot be opened reads as an error wherever it was asked for; a missing file has no bytes. */
		struct decoder d;
		decoder_init(&d, cs, &runs, 0);
		for (size_t k = 0; f->block && k < nranges; k++)
			if (ranges[k][1] > ranges[k][0])
				decode_error(&d, ranges[k][0], ranges[k][1] - ranges[k][0]);
		emit_final(f, 0, &runs, ranges, f->block ? nranges : 0);
		runs_free(&runs);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (!f->has_ranges) {
		whole[0][0] = 0;
		whole[0][1] = size;
		ranges = whole;
		nranges = 1;
	}
	struct source src = { fd, f->block ? open(f->path, O_RDONLY | O_DIRECT | O_CLOEXEC) : -1, PIECE };
	int lbs = 0;
	if (src.dfd >= 0 && ioctl(src.dfd, BLKSSZGET, &lbs) == 0 && lbs >= 512 && lbs <= PIECE)
		src.dpiece = (size_t)lbs;
	void *mem = NULL;
	if (posix_memalign(&mem, DIRECT_LOOK, CHUNK + DIRECT_LOOK) == 0) {
		uint8_t *buf = mem;
		for (size_t k = 0; k < nranges; k++) {
			struct decoder d;
			decoder_init(&d, cs, &runs, 0);
			read_range(&src, buf, &d, ranges[k][0], ranges[k][1]);
		}
		free(mem);
	}
	if (src.dfd >= 0)
		close(src.dfd);
	close(fd);
	emit_final(f, size, &runs, ranges, nranges);
	runs_free(&runs);
}
