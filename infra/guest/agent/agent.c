/*
 * blockfarm-agent: PID 1 of the QEMU guests (infra/guest/). It mounts the
 * kernel filesystems, loads the modules listed in /etc/blockfarm/modules,
 * finds the virtio-serial port named "blockfarm.agent" and serves the host
 * over it, forever. Static C: it must not depend on anything in the image
 * being right, and it must not die (the kernel panics when init exits).
 *
 * Wire protocol (worker/targets/qemu/agent-channel.ts is the other side).
 * Host -> guest: one command per line, a RUN's payload right after its line.
 *
 *   PING <token>                      -> PONG <token>
 *   INFO                              -> INFO <json: release, uptime, disks [{name, serial, sectors, lbs, pbs}]>
 *   RUN <id> <argv-bytes> <stdin-bytes> <flags>
 *        then argv-bytes of NUL-terminated argv strings and stdin-bytes of input.
 *        flags: "-" or letters: k = also send the kernel log records added while it ran.
 *                                  -> OUT <id> <line>   each line of its stdout, as it comes
 *                                     ERR <id> <line>   each line of its stderr
 *                                     KM <id> <line>    kernel log (/dev/kmsg) lines, after it ended
 *                                     END <id> <exit> <signal>   (exit -1 when it could not start)
 *                                  or BUSY <id> when another RUN is in progress
 *   KILL <id> <signal>                signal the RUN's process group
 *   SYSRQ <c>                         write c to /proc/sysrq-trigger (tests: 'c' crashes the kernel)
 *   STALL                             stop serving for good (tests: an agent that stops answering)
 *
 * Guest -> host lines never contain a newline; unknown commands get
 * "BAD <text>". While the host is not connected, reads on the port return
 * EOF: the agent then waits a little and tries again (a VM restored from a
 * snapshot finds its host reconnected that way). A host that goes away
 * while a RUN is in progress gets it SIGTERMed (the executor then undoes its
 * set-up).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT_NAME "blockfarm.agent"
#define MODULES_LIST "/etc/blockfarm/modules"
#define GUEST_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ARGV_BYTES (1 << 20)
#define MAX_STDIN_BYTES (256 << 20)

static int g_sigpipe[2] = { -1, -1 };

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		fd = 2;
	ssize_t w = write(fd, buf, (size_t)n);
	(void)w;
	if (fd != 2)
		close(fd);
}

static void on_child(int sig)
{
	(void)sig;
	int e = errno;
	ssize_t w = write(g_sigpipe[1], "c", 1);
	(void)w;
	errno = e;
}

static void mkdirs(const char *const *dirs)
{
	for (; *dirs; dirs++)
		mkdir(*dirs, 0755);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t w = write(fd, text, strlen(text));
	(void)w;
	close(fd);
}

static void setup_system(void)
{
	static const char *const dirs[] = { "/proc", "/sys", "/dev", "/tmp", "/run", "/mnt", NULL };
	mkdirs(dirs);
	mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	static const char *const more[] = { "/dev/pts", "/dev/shm", "/run/cryptsetup", "/run/mdadm", "/run/lock", NULL };
	mkdirs(more);
	mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount("debugfs", "/sys/kernel/debug", "debugfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	write_file("/proc/sys/kernel/sysrq", "1\n");
	setenv("PATH", GUEST_PATH, 1);
	setenv("HOME", "/root", 1);
	setenv("TERM", "dumb", 1);
	setenv("LANG", "C", 1);
	/* No udev here: libdevmapper must make the /dev/mapper nodes itself. */
	setenv("DM_DISABLE_UDEV", "1", 1);
}

static int wait_pid(pid_t pid)
{
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, 0);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* modprobe -a -q every module in the list (one process: the list is long). */
static void load_modules(void)
{
	FILE *f = fopen(MODULES_LIST, "re");
	if (!f)
		return;
	char *argv[512];
	int n = 0;
	argv[n++] = "modprobe";
	argv[n++] = "-a";
	char line[256];
	while (n < 510 && fgets(line, sizeof line, f)) {
		line[strcspn(line, " \t\r\n#")] = 0;
		if (line[0])
			argv[n++] = strdup(line);
	}
	fclose(f);
	argv[n] = NULL;
	if (n == 2)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid > 0) {
		int rc = wait_pid(pid);
		if (rc != 0)
			say("blockfarm-agent: modprobe -a exited %d\n", rc);
	}
}

/* /dev/vportNpM of the port named PORT_NAME, waiting for it to show up. */
static bool find_port(char *dev, size_t len)
{
	for (int tries = 0; tries < 3000; tries++) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[300], name[128] = { 0 };
			snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			ssize_t k = read(fd, name, sizeof name - 1);
			close(fd);
			if (k > 0 && name[k - 1] == '\n')
				name[k - 1] = 0;
			if (strcmp(name, PORT_NAME) == 0) {
				snprintf(dev, len, "/dev/%s", e->d_name);
				closedir(d);
				if (access(dev, R_OK | W_OK) == 0)
					return true;
				break;
			}
		}
		if (d)
			closedir(d);
		usleep(10000);
	}
	return false;
}

/* ------------------------------------------------------------ output */

static int g_port = -1;

/* Write all of buf to the port; a host that went away drops the output. */
static void port_write(const char *buf, size_t n)
{
	while (n && g_port >= 0) {
		ssize_t w = write(g_port, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = g_port, .events = POLLOUT };
			if (poll(&p, 1, 1000) <= 0 || (p.revents & (POLLHUP | POLLERR)))
				return;
			continue;
		}
		if (w <= 0)
			return;
		buf += w;
		n -= (size_t)w;
	}
}

static void reply(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	port_write(buf, (size_t)n);
}

/* "<tag> <id> " + line (newlines inside replaced) + "\n". */
static void reply_line(const char *tag, long id, const char *s, size_t n)
{
	char head[48];
	int h = snprintf(head, sizeof head, "%s %ld ", tag, id);
	char *buf = malloc((size_t)h + n + 1);
	if (!buf)
		return;
	memcpy(buf, head, (size_t)h);
	for (size_t i = 0; i < n; i++)
		buf[h + i] = s[i] == '\n' || s[i] == '\r' ? ' ' : s[i];
	buf[(size_t)h + n] = '\n';
	port_write(buf, (size_t)h + n + 1);
	free(buf);
}

/* ------------------------------------------------------------ INFO */

static long read_long(const char *path)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t k = read(fd, buf, sizeof buf - 1);
	close(fd);
	return k > 0 ? strtol(buf, NULL, 10) : -1;
}

static void read_word(const char *path, char *out, size_t len)
{
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t k = read(fd, out, len - 1);
	close(fd);
	if (k <= 0) {
		out[0] = 0;
		return;
	}
	out[k] = 0;
	out[strcspn(out, "\n")] = 0;
	for (char *p = out; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 32)
			*p = '_';
}

static void cmd_info(void)
{
	char buf[8192];
	size_t n = 0;
	struct utsname u;
	uname(&u);
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	n += (size_t)snprintf(buf + n, sizeof buf - n, "INFO {\"release\":\"%s\",\"uptimeMs\":%lld,\"disks\":[", u.release,
			      (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	bool first = true;
	while (d && (e = readdir(d)) && n < sizeof buf - 300) {
		if (strncmp(e->d_name, "vd", 2) != 0)
			continue;
		char p[300], serial[64];
		snprintf(p, sizeof p, "/sys/block/%s/serial", e->d_name);
		read_word(p, serial, sizeof serial);
		snprintf(p, sizeof p, "/sys/block/%s/size", e->d_name);
		long sectors = read_long(p);
		snprintf(p, sizeof p, "/sys/block/%s/queue/logical_block_size", e->d_name);
		long lbs = read_long(p);
		snprintf(p, sizeof p, "/sys/block/%s/queue/physical_block_size", e->d_name);
		long pbs = read_long(p);
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"name\":\"%s\",\"serial\":\"%s\",\"sectors\":%ld,\"lbs\":%ld,\"pbs\":%ld}",
				      first ? "" : ",", e->d_name, serial, sectors, lbs, pbs);
		first = false;
	}
	if (d)
		closedir(d);
	n += (size_t)snprintf(buf + n, sizeof buf - n, "]}\n");
	port_write(buf, n < sizeof buf ? n : sizeof buf - 1);
}

/* ------------------------------------------------------------ RUN */

struct run {
	bool active;
	long id;
	pid_t pid;
	int out, err, in; /* pipes, -1 when closed */
	char *inbuf;
	size_t inlen, inoff;
	char *obuf, *ebuf;
	size_t olen, ocap, elen, ecap;
	int kmsg; /* /dev/kmsg cursor when the run wants the kernel log */
	bool exited;
	int status;
};

static struct run g_run = { .out = -1, .err = -1, .in = -1, .kmsg = -1 };

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void flush_lines(const char *tag, char **buf, size_t *len, bool all)
{
	size_t start = 0;
	for (size_t i = 0; i < *len; i++)
		if ((*buf)[i] == '\n') {
			reply_line(tag, g_run.id, *buf + start, i - start);
			start = i + 1;
		}
	if (all && start < *len) {
		reply_line(tag, g_run.id, *buf + start, *len - start);
		start = *len;
	}
	memmove(*buf, *buf + start, *len - start);
	*len -= start;
}

static void pump(int *fd, const char *tag, char **buf, size_t *len, size_t *cap)
{
	for (;;) {
		if (*cap - *len < 65536) {
			size_t nc = *cap ? *cap * 2 : 131072;
			char *b = realloc(*buf, nc);
			if (!b)
				return;
			*buf = b;
			*cap = nc;
		}
		ssize_t k = read(*fd, *buf + *len, *cap - *len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k <= 0) {
			close_fd(fd);
			flush_lines(tag, buf, len, true);
			return;
		}
		*len += (size_t)k;
		flush_lines(tag, buf, len, false);
	}
}

static void send_kmsg(void)
{
	if (g_run.kmsg < 0)
		return;
	char rec[8192];
	for (;;) {
		ssize_t k = read(g_run.kmsg, rec, sizeof rec);
		if (k < 0 && errno == EPIPE)
			continue; /* overwritten before we read it */
		if (k <= 0)
			break;
		size_t start = 0;
		for (size_t i = 0; i <= (size_t)k; i++)
			if (i == (size_t)k || rec[i] == '\n') {
				if (i > start)
					reply_line("KM", g_run.id, rec + start, i - start);
				start = i + 1;
			}
	}
	close_fd(&g_run.kmsg);
}

static void finish_run_if_done(void)
{
	if (!g_run.active || !g_run.exited || g_run.out >= 0 || g_run.err >= 0)
		return;
	send_kmsg();
	int st = g_run.status;
	if (WIFEXITED(st))
		reply("END %ld %d 0", g_run.id, WEXITSTATUS(st));
	else
		reply("END %ld -1 %d", g_run.id, WTERMSIG(st));
	close_fd(&g_run.in);
	free(g_run.inbuf);
	g_run.inbuf = NULL;
	g_run.active = false;
}

static void reap(void)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		if (g_run.active && p == g_run.pid) {
			g_run.exited = true;
			g_run.status = st;
		}
}

static void start_run(long id, char *argvbuf, size_t argvlen, char *in, size_t inlen, const char *flags)
{
	char *argv[256];
	size_t n = 0;
	for (size_t off = 0; off < argvlen && n < 255;) {
		argv[n++] = argvbuf + off;
		off += strnlen(argvbuf + off, argvlen - off) + 1;
	}
	argv[n] = NULL;
	if (n == 0) {
		reply("END %ld -1 0", id);
		free(in);
		return;
	}
	int po[2], pe[2], pi[2];
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) || pipe2(pi, O_CLOEXEC)) {
		reply("END %ld -1 0", id);
		free(in);
		return;
	}
	int kmsg = -1;
	if (strchr(flags, 'k')) {
		kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (kmsg >= 0)
			lseek(kmsg, 0, SEEK_END);
	}
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		dup2(pi[0], 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (chdir("/tmp") != 0) {
			/* stay in / */
		}
		const char *file = strcmp(argv[0], "blockfarm-exec") == 0 ? "/usr/bin/blockfarm-exec" : argv[0];
		execvp(file, argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	close(pi[0]);
	if (pid < 0) {
		close(po[0]);
		close(pe[0]);
		close(pi[1]);
		close_fd(&kmsg);
		reply("END %ld -1 0", id);
		free(in);
		return;
	}
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	fcntl(pi[1], F_SETFL, O_NONBLOCK);
	g_run.active = true;
	g_run.id = id;
	g_run.pid = pid;
	g_run.out = po[0];
	g_run.err = pe[0];
	g_run.in = pi[1];
	g_run.inbuf = in;
	g_run.inlen = inlen;
	g_run.inoff = 0;
	g_run.olen = g_run.elen = 0;
	g_run.kmsg = kmsg;
	g_run.exited = false;
	if (inlen == 0)
		close_fd(&g_run.in);
}

static void feed_stdin(void)
{
	while (g_run.in >= 0 && g_run.inoff < g_run.inlen) {
		ssize_t w = write(g_run.in, g_run.inbuf + g_run.inoff, g_run.inlen - g_run.inoff);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			close_fd(&g_run.in);
			return;
		}
		g_run.inoff += (size_t)w;
	}
	close_fd(&g_run.in);
}

static void kill_run(int sig)
{
	if (g_run.active && !g_run.exited)
		kill(-g_run.pid, sig);
}

/* ------------------------------------------------------------ commands */

struct inbuf {
	char *b;
	size_t len, cap;
};

/* A RUN whose payload has not fully arrived yet. */
static struct {
	bool waiting;
	long id;
	size_t argvlen, inlen;
	char flags[16];
} g_pending;

static bool handle_line(char *line, struct inbuf *ib, size_t *consumed);

/* Handle what is buffered; returns when a command needs more bytes. */
static void process(struct inbuf *ib)
{
	size_t off = 0;
	for (;;) {
		if (g_pending.waiting) {
			size_t need = g_pending.argvlen + g_pending.inlen;
			if (ib->len - off < need)
				break;
			char *argv = malloc(g_pending.argvlen + 1);
			char *in = malloc(g_pending.inlen + 1);
			if (!argv || !in) {
				free(argv);
				free(in);
				reply("END %ld -1 0", g_pending.id);
			} else {
				memcpy(argv, ib->b + off, g_pending.argvlen);
				argv[g_pending.argvlen] = 0;
				memcpy(in, ib->b + off + g_pending.argvlen, g_pending.inlen);
				if (g_run.active) {
					reply("BUSY %ld", g_pending.id);
					free(in);
				} else
					start_run(g_pending.id, argv, g_pending.argvlen, in, g_pending.inlen, g_pending.flags);
				free(argv);
			}
			off += need;
			g_pending.waiting = false;
			continue;
		}
		char *nl = memchr(ib->b + off, '\n', ib->len - off);
		if (!nl)
			break;
		*nl = 0;
		char *line = ib->b + off;
		off = (size_t)(nl - ib->b) + 1;
		size_t dummy = 0;
		handle_line(line, ib, &dummy);
	}
	memmove(ib->b, ib->b + off, ib->len - off);
	ib->len -= off;
}

static bool handle_line(char *line, struct inbuf *ib, size_t *consumed)
{
	(void)ib;
	(void)consumed;
	size_t n = strlen(line);
	if (n && line[n - 1] == '\r')
		line[--n] = 0;
	if (n == 0)
		return true;
	if (strncmp(line, "PING", 4) == 0 && (line[4] == ' ' || line[4] == 0)) {
		reply("PONG %s", line[4] ? line + 5 : "");
	} else if (strcmp(line, "INFO") == 0) {
		cmd_info();
	} else if (strncmp(line, "RUN ", 4) == 0) {
		long id;
		unsigned long a, b;
		char flags[16] = "-";
		if (sscanf(line + 4, "%ld %lu %lu %15s", &id, &a, &b, flags) < 3 || a > MAX_ARGV_BYTES || b > MAX_STDIN_BYTES) {
			reply("BAD %.200s", line);
			return true;
		}
		g_pending.waiting = true;
		g_pending.id = id;
		g_pending.argvlen = a;
		g_pending.inlen = b;
		snprintf(g_pending.flags, sizeof g_pending.flags, "%s", flags);
	} else if (strncmp(line, "KILL ", 5) == 0) {
		long id;
		int sig;
		if (sscanf(line + 5, "%ld %d", &id, &sig) == 2 && g_run.active && g_run.id == id)
			kill_run(sig);
	} else if (strncmp(line, "SYSRQ ", 6) == 0 && line[6]) {
		char c[2] = { line[6], 0 };
		write_file("/proc/sysrq-trigger", c);
		reply("SYSRQ %c", line[6]);
	} else if (strcmp(line, "STALL") == 0) {
		reply("STALLED");
		for (;;)
			pause();
	} else {
		reply("BAD %.200s", line);
	}
	return true;
}

static void serve(const char *dev)
{
	struct inbuf ib = { 0 };
	for (;;) {
		if (g_port < 0) {
			g_port = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
			if (g_port < 0) {
				usleep(20000);
				continue;
			}
			ib.len = 0;
			g_pending.waiting = false;
		}
		struct pollfd p[5];
		int np = 0;
		p[np++] = (struct pollfd){ .fd = g_sigpipe[0], .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = g_port, .events = POLLIN };
		int iout = -1, ierr = -1, iin = -1;
		if (g_run.active && g_run.out >= 0) {
			iout = np;
			p[np++] = (struct pollfd){ .fd = g_run.out, .events = POLLIN };
		}
		if (g_run.active && g_run.err >= 0) {
			ierr = np;
			p[np++] = (struct pollfd){ .fd = g_run.err, .events = POLLIN };
		}
		if (g_run.active && g_run.in >= 0) {
			iin = np;
			p[np++] = (struct pollfd){ .fd = g_run.in, .events = POLLOUT };
		}
		int r = poll(p, (nfds_t)np, 1000);
		if (r < 0 && errno != EINTR)
			usleep(1000);
		if (r <= 0) {
			reap();
			finish_run_if_done();
			continue;
		}
		if (p[0].revents) {
			char junk[64];
			while (read(g_sigpipe[0], junk, sizeof junk) > 0) {
			}
			reap();
		}
		if (iout >= 0 && p[iout].revents)
			pump(&g_run.out, "OUT", &g_run.obuf, &g_run.olen, &g_run.ocap);
		if (ierr >= 0 && p[ierr].revents)
			pump(&g_run.err, "ERR", &g_run.ebuf, &g_run.elen, &g_run.ecap);
		if (iin >= 0 && p[iin].revents)
			feed_stdin();
		if (p[1].revents & POLLIN) {
			if (ib.cap - ib.len < 65536) {
				size_t nc = ib.cap ? ib.cap * 2 : 262144;
				char *b = realloc(ib.b, nc);
				if (b) {
					ib.b = b;
					ib.cap = nc;
				}
			}
			ssize_t k = read(g_port, ib.b + ib.len, ib.cap - ib.len);
			if (k > 0) {
				ib.len += (size_t)k;
				process(&ib);
			} else if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
				goto disconnected;
			}
		} else if (p[1].revents & (POLLHUP | POLLERR)) {
			goto disconnected;
		}
		reap();
		finish_run_if_done();
		continue;
disconnected:
		/* The host is not connected (EOF): a run in progress has lost its reader. */
		kill_run(SIGTERM);
		close_fd(&g_port);
		usleep(2000);
		reap();
		finish_run_if_done();
	}
}

int main(void)
{
	bool init = getpid() == 1;
	if (pipe2(g_sigpipe, O_CLOEXEC | O_NONBLOCK) != 0)
		g_sigpipe[0] = g_sigpipe[1] = -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (init) {
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		setup_system();
	}
	load_modules();
	char dev[300];
	if (!find_port(dev, sizeof dev)) {
		say("blockfarm-agent: no virtio port named %s\n", PORT_NAME);
		for (;;)
			pause();
	}
	say("blockfarm-agent: serving on %s\n", dev);
	serve(dev);
	return 0;
}
