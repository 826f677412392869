/*
 * Geometry probes after set-up: what the kernel really chose for each layer
 * (size, logical and physical block size; whether a loop device really does
 * direct IO; a file's direct-IO alignment). A probe that cannot be made is
 * left out (and said on stderr): the TS side sees the missing id.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "runtime.h"
#include "util.h"

struct geom {
	uint64_t size;
	unsigned lbs, pbs;
	int dio; /* loop devices: 0/1; -1 when not a loop device */
	long dio_align; /* files: statx's DIO offset alignment; -1 for block devices */
};

static int probe_block(int fd, struct geom *g)
{
	int lbs = 0;
	if (ioctl(fd, BLKGETSIZE64, &g->size) < 0 || ioctl(fd, BLKSSZGET, &lbs) < 0 || ioctl(fd, BLKPBSZGET, &g->pbs) < 0)
		return errno;
	g->lbs = (unsigned)lbs;
	struct stat st;
	char path[96], val[16];
	g->dio = -1;
	g->dio_align = -1;
	/* /sys/dev/block/M:m is the device's sysfs directory; only loop devices have loop/dio. */
	if (fstat(fd, &st) == 0) {
		snprintf(path, sizeof path, "/sys/dev/block/%u:%u/loop/dio", major(st.st_rdev), minor(st.st_rdev));
		if (read_small_file(path, val, sizeof val))
			g->dio = val[0] == '1';
	}
	return 0;
}

static int probe_file(int fd, struct geom *g)
{
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_DIOALIGN, &sx) < 0)
		return errno;
	g->size = sx.stx_size;
	/* A file has no sectors of its own: its filesystem's block size stands for both. */
	g->lbs = g->pbs = sx.stx_blksize;
	g->dio = -1;
	/* Kernels before 6.1 do not report the alignment: 0, as for a file without direct IO. */
	g->dio_align = sx.stx_mask & STATX_DIOALIGN ? (long)sx.stx_dio_offset_align : 0;
	return 0;
}

void probe_geometry(const struct probe *p)
{
	int fd = open(p->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "geometry %s: cannot open %s: %s\n", p->id, p->path, strerror(errno));
		return;
	}
	struct geom g;
	memset(&g, 0, sizeof g);
	int e = p->block ? probe_block(fd, &g) : probe_file(fd, &g);
	close(fd);
	if (e) {
		fprintf(stderr, "geometry %s: %s: %s\n", p->id, p->path, strerror(e));
		return;
	}
	struct jw w;
	jw_init(&w);
	jw_obj_begin(&w);
	jw_kstr(&w, "ev", "geometry");
	jw_kstr(&w, "id", p->id);
	jw_kint(&w, "size", (int64_t)g.size);
	jw_kint(&w, "logicalBlockSize", g.lbs);
	jw_kint(&w, "physicalBlockSize", g.pbs);
	if (g.dio >= 0)
		jw_kbool(&w, "directIo", g.dio == 1);
	if (g.dio_align >= 0)
		jw_kint(&w, "dioOffsetAlign", g.dio_align);
	jw_obj_end(&w);
	emit(&w);
	jw_free(&w);
}
