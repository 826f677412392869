/*
 * Built-in helpers for set-up and undo steps, so that layer set-up stays a
 * list of argv arrays (never a shell) even where it needs a little logic.
 * A step whose argv[0] is "blockfarm-exec" runs this executor's own binary
 * (/proc/self/exe, see spawn.c), whatever its path on the target:
 *
 *   blockfarm-exec --calc A OP B [OP C ...]
 *       integer arithmetic, left to right; OP is + - * / % min max.
 *       Prints the result (e.g. the length of a dm table from a captured size).
 *   blockfarm-exec --field N CMD [ARG...]
 *       runs CMD and prints the N-th (1-based) whitespace-separated field of
 *       the first line of its stdout (e.g. dm-integrity's provided sectors
 *       from `dmsetup status`); CMD's exit code when it fails, 1 when there is
 *       no such field.
 *   blockfarm-exec --if-exists PATH CMD [ARG...]
 *       runs CMD only if PATH exists, else succeeds (undo steps for devices
 *       that an op may already have removed).
 *   blockfarm-exec --scsi-debug-dev [TIMEOUT_MS]
 *       waits (default 10 s) for the disk of the scsi_debug module and prints
 *       its device node (/dev/sdX).
 *   blockfarm-exec --zero-devices [--flush DEV]... [--zero DEV]...
 *       a target's reset between cases, in one process (under TCG every
 *       program started costs): write back and drop the page cache of every
 *       device (BLKFLSBUF), zero each --zero device whole (BLKZEROOUT, which
 *       also drops its cached pages; not opened exclusively, since a kept
 *       stack holds its disks), then drop every cache again, so that no
 *       device above shows pages cached before the zeroing.
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int usage(const char *what)
{
	fprintf(stderr, "blockfarm-exec: usage: %s\n", what);
	return 2;
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

static int calc(int argc, char **argv)
{
	if (argc < 1 || argc % 2 == 0)
		return usage("--calc A [OP B]...  (OP: + - * / % min max)");
	int64_t acc;
	if (!parse_i64(argv[0], &acc)) {
		fprintf(stderr, "blockfarm-exec --calc: '%s' is not an integer\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i += 2) {
		const char *op = argv[i];
		int64_t b;
		if (!parse_i64(argv[i + 1], &b)) {
			fprintf(stderr, "blockfarm-exec --calc: '%s' is not an integer\n", argv[i + 1]);
			return 2;
		}
		if ((!strcmp(op, "/") || !strcmp(op, "%")) && b == 0) {
			fprintf(stderr, "blockfarm-exec --calc: division by zero\n");
			return 2;
		}
		if (!strcmp(op, "+"))
			acc += b;
		else if (!strcmp(op, "-"))
			acc -= b;
		else if (!strcmp(op, "*"))
			acc *= b;
		else if (!strcmp(op, "/"))
			acc /= b;
		else if (!strcmp(op, "%"))
			acc %= b;
		else if (!strcmp(op, "min"))
			acc = acc < b ? acc : b;
		else if (!strcmp(op, "max"))
			acc = acc > b ? acc : b;
		else {
			fprintf(stderr, "blockfarm-exec --calc: unknown operator '%s'\n", op);
			return 2;
		}
	}
	printf("%lld\n", (long long)acc);
	return 0;
}

static int field(int argc, char **argv)
{
	int64_t n;
	if (argc < 2 || !parse_i64(argv[0], &n) || n < 1)
		return usage("--field N CMD [ARG...]");
	int p[2];
	if (pipe(p))
		return 4;
	pid_t pid = fork();
	if (pid < 0)
		return 4;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "cannot run '%s': %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	char buf[4096];
	size_t len = 0;
	ssize_t k;
	while ((k = read(p[0], buf + len, sizeof buf - 1 - len)) > 0 && len < sizeof buf - 1)
		len += (size_t)k;
	while (read(p[0], (char[256]){ 0 }, 256) > 0) {
	}
	close(p[0]);
	buf[len] = 0;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (code)
		return code;
	buf[strcspn(buf, "\n")] = 0;
	char *save, *tok = strtok_r(buf, " \t", &save);
	for (int64_t i = 1; tok && i < n; i++)
		tok = strtok_r(NULL, " \t", &save);
	if (!tok) {
		fprintf(stderr, "blockfarm-exec --field: no field %lld in the output of %s\n", (long long)n, argv[1]);
		return 1;
	}
	printf("%s\n", tok);
	return 0;
}

static int if_exists(int argc, char **argv)
{
	if (argc < 2)
		return usage("--if-exists PATH CMD [ARG...]");
	struct stat st;
	if (lstat(argv[0], &st) != 0)
		return 0;
	execvp(argv[1], argv + 1);
	fprintf(stderr, "cannot run '%s': %s\n", argv[1], strerror(errno));
	return 127;
}

/* /sys/bus/pseudo/drivers/scsi_debug/adapterN/hostH/targetH:C:T/H:C:T:L/block/sdX */
static bool find_scsi_debug_disk(char *out, size_t len)
{
	const char *root = "/sys/bus/pseudo/drivers/scsi_debug";
	DIR *d = opendir(root);
	if (!d)
		return false;
	struct dirent *a;
	bool found = false;
	while (!found && (a = readdir(d))) {
		if (strncmp(a->d_name, "adapter", 7))
			continue;
		char p1[512];
		snprintf(p1, sizeof p1, "%s/%s", root, a->d_name);
		DIR *h = opendir(p1);
		struct dirent *he;
		while (!found && h && (he = readdir(h))) {
			if (strncmp(he->d_name, "host", 4))
				continue;
			char p2[768];
			snprintf(p2, sizeof p2, "%s/%s", p1, he->d_name);
			DIR *t = opendir(p2);
			struct dirent *te;
			while (!found && t && (te = readdir(t))) {
				if (strncmp(te->d_name, "target", 6))
					continue;
				char p3[1024];
				snprintf(p3, sizeof p3, "%s/%s", p2, te->d_name);
				DIR *l = opendir(p3);
				struct dirent *le;
				while (!found && l && (le = readdir(l))) {
					if (!strchr(le->d_name, ':'))
						continue;
					char p4[1536];
					snprintf(p4, sizeof p4, "%s/%s/block", p3, le->d_name);
					DIR *b = opendir(p4);
					struct dirent *be;
					while (!found && b && (be = readdir(b)))
						if (be->d_name[0] != '.') {
							snprintf(out, len, "/dev/%s", be->d_name);
							found = access(out, F_OK) == 0;
						}
					if (b)
						closedir(b);
				}
				if (l)
					closedir(l);
			}
			if (t)
				closedir(t);
		}
		if (h)
			closedir(h);
	}
	closedir(d);
	return found;
}

static int scsi_debug_dev(int argc, char **argv)
{
	int64_t timeout = 10000;
	if (argc > 1 || (argc == 1 && !parse_i64(argv[0], &timeout)))
		return usage("--scsi-debug-dev [TIMEOUT_MS]");
	char dev[512];
	for (int64_t waited = 0;; waited += 10) {
		if (find_scsi_debug_disk(dev, sizeof dev)) {
			printf("%s\n", dev);
			return 0;
		}
		if (waited >= timeout)
			break;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "blockfarm-exec --scsi-debug-dev: no scsi_debug disk appeared within %lld ms\n", (long long)timeout);
	return 1;
}

static int flush_device(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, BLKFLSBUF, 0) < 0) {
		fprintf(stderr, "blockfarm-exec --zero-devices: flushing %s: %s\n", dev, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

static int zero_device(const char *dev)
{
	int fd = open(dev, O_WRONLY | O_CLOEXEC);
	uint64_t size = 0;
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0) {
		fprintf(stderr, "blockfarm-exec --zero-devices: %s: %s\n", dev, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	uint64_t range[2] = { 0, size };
	int r = ioctl(fd, BLKZEROOUT, range);
	if (r < 0)
		fprintf(stderr, "blockfarm-exec --zero-devices: zeroing %s: %s\n", dev, strerror(errno));
	close(fd);
	return r < 0;
}

static int zero_devices(int argc, char **argv)
{
	if (argc % 2)
		return usage("--zero-devices [--flush DEV]... [--zero DEV]...");
	for (int i = 0; i < argc; i += 2)
		if (strcmp(argv[i], "--flush") && strcmp(argv[i], "--zero"))
			return usage("--zero-devices [--flush DEV]... [--zero DEV]...");
	int failed = 0;
	for (int i = 0; i < argc; i += 2)
		failed |= flush_device(argv[i + 1]);
	for (int i = 0; i < argc && !failed; i += 2)
		if (!strcmp(argv[i], "--zero"))
			failed |= zero_device(argv[i + 1]);
	for (int i = 0; i < argc && !failed; i += 2)
		failed |= flush_device(argv[i + 1]);
	return failed;
}

int helper_main(int argc, char **argv)
{
	if (argc < 2)
		return -1;
	const char *h = argv[1];
	if (!strcmp(h, "--calc"))
		return calc(argc - 2, argv + 2);
	if (!strcmp(h, "--field"))
		return field(argc - 2, argv + 2);
	if (!strcmp(h, "--if-exists"))
		return if_exists(argc - 2, argv + 2);
	if (!strcmp(h, "--scsi-debug-dev"))
		return scsi_debug_dev(argc - 2, argv + 2);
	if (!strcmp(h, "--zero-devices"))
		return zero_devices(argc - 2, argv + 2);
	return -1;
}
