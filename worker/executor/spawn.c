/* Running set-up, undo, check and exec argvs; see spawn.h. */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "util.h"

extern char **environ;

/* ------------------------------------------------------------ variables */

bool vars_set(struct vars *v, const char *name, const char *value)
{
	for (size_t k = 0; k < v->n; k++)
		if (strcmp(v->names[k], name) == 0) {
			char *s = strdup(value);
			if (!s)
				return false;
			free(v->values[k]);
			v->values[k] = s;
			return true;
		}
	char **names = realloc(v->names, (v->n + 1) * sizeof *names);
	if (!names)
		return false;
	v->names = names;
	char **values = realloc(v->values, (v->n + 1) * sizeof *values);
	if (!values)
		return false;
	v->values = values;
	v->names[v->n] = strdup(name);
	v->values[v->n] = strdup(value);
	if (!v->names[v->n] || !v->values[v->n])
		return false;
	v->n++;
	return true;
}

static const char *lookup(const struct vars *v, const char *name, size_t n)
{
	for (size_t k = 0; k < v->n; k++)
		if (strlen(v->names[k]) == n && memcmp(v->names[k], name, n) == 0)
			return v->values[k];
	return NULL;
}

char *subst(const struct vars *v, const char *tmpl)
{
	size_t cap = strlen(tmpl) + 1, len = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	const char *p = tmpl;
	while (*p) {
		const char *piece = p;
		size_t n = 1;
		const char *e;
		if (p[0] == '$' && p[1] == '{' && (e = strchr(p + 2, '}'))) {
			const char *val = lookup(v, p + 2, (size_t)(e - p - 2));
			if (val) {
				piece = val;
				n = strlen(val);
			} else
				n = (size_t)(e - p + 1); /* cannot happen after plan validation: keep it literal */
			p = e + 1;
		} else
			p++;
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			char *o = realloc(out, cap);
			if (!o) {
				free(out);
				return NULL;
			}
			out = o;
		}
		memcpy(out + len, piece, n);
		len += n;
	}
	out[len] = 0;
	return out;
}

char **subst_argv(const struct vars *v, char *const *tmpl, size_t n)
{
	char **argv = calloc(n + 1, sizeof *argv);
	if (!argv)
		return NULL;
	for (size_t k = 0; k < n; k++)
		if (!(argv[k] = subst(v, tmpl[k]))) {
			free_argv(argv);
			return NULL;
		}
	return argv;
}

void free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

char *first_line(const char *s)
{
	size_t n = strcspn(s, "\n");
	if (n && s[n - 1] == '\r')
		n--;
	return strndup(s, n);
}

/* ------------------------------------------------------------ capture */

struct cap {
	char *b;
	size_t n, cap;
};

static void cap_put(struct cap *c, const char *src, size_t n)
{
	/* Past the limit the bytes are read and dropped, so the child never blocks on a full pipe. */
	if (c->n >= SPAWN_OUT_MAX)
		return;
	if (n > SPAWN_OUT_MAX - c->n)
		n = SPAWN_OUT_MAX - c->n;
	if (c->n + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		while (cap < c->n + n + 1)
			cap *= 2;
		char *b = realloc(c->b, cap);
		if (!b)
			return;
		c->b = b;
		c->cap = cap;
	}
	memcpy(c->b + c->n, src, n);
	c->n += n;
	c->b[c->n] = 0;
}

static char *cap_take(struct cap *c, size_t *len)
{
	if (!c->b)
		c->b = strdup("");
	*len = c->b ? c->n : 0;
	return c->b;
}

/* Read what is available; false at EOF or on error (the pipe is then closed). */
static bool drain(int *fd, struct cap *c)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(*fd, buf, sizeof buf);
		if (n > 0) {
			cap_put(c, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		close(*fd);
		*fd = -1;
		return false;
	}
}

/* ------------------------------------------------------------ spawning */

/* Signals the executor changes; the child gets them back at their defaults, and none blocked. */
static const int RESET_SIGNALS[] = { SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGBUS, SIGSEGV, SIGCHLD };

static int start(char *const argv[], bool with_stdin, int in[2], int out[2], int err[2], pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defs;
	int rc;

	posix_spawn_file_actions_init(&fa);
	if (with_stdin)
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);

	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&defs);
	for (size_t k = 0; k < sizeof RESET_SIGNALS / sizeof RESET_SIGNALS[0]; k++)
		sigaddset(&defs, RESET_SIGNALS[k]);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defs);
	/* Its own process group, so a timeout kills whatever it forked too (mkfs, mount helpers). */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

	/* "blockfarm-exec" is this binary, wherever it is (the built-in helpers, helpers.c). */
	rc = posix_spawnp(pid, strcmp(argv[0], SELF_NAME) == 0 ? "/proc/self/exe" : argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* pidfd_open(2) (Linux 5.3): lets poll() wake when the child exits. -1 on older kernels. */
static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	return -1;
#endif
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

struct io_state {
	int in, out, err, pidfd;
	const char *data;
	size_t len, off;
	struct cap o, e;
};

/* One round of poll over the child's pipes (and pidfd), waiting at most wait_ms. */
static void pump(struct io_state *s, int wait_ms)
{
	struct pollfd p[4];
	int n = 0, iin = -1, iout = -1, ierr = -1;
	if (s->in >= 0) {
		iin = n;
		p[n++] = (struct pollfd){ .fd = s->in, .events = POLLOUT };
	}
	if (s->out >= 0) {
		iout = n;
		p[n++] = (struct pollfd){ .fd = s->out, .events = POLLIN };
	}
	if (s->err >= 0) {
		ierr = n;
		p[n++] = (struct pollfd){ .fd = s->err, .events = POLLIN };
	}
	if (s->pidfd >= 0)
		p[n++] = (struct pollfd){ .fd = s->pidfd, .events = POLLIN };
	if (poll(p, (nfds_t)n, wait_ms) <= 0)
		return;
	if (iout >= 0 && p[iout].revents)
		drain(&s->out, &s->o);
	if (ierr >= 0 && p[ierr].revents)
		drain(&s->err, &s->e);
	if (iin >= 0 && p[iin].revents) {
		ssize_t w = p[iin].revents & POLLOUT ? write(s->in, s->data + s->off, s->len - s->off) : -1;
		if (w > 0)
			s->off += (size_t)w;
		if ((w < 0 && errno != EAGAIN && errno != EINTR) || s->off == s->len)
			close_fd(&s->in);
	}
}

int spawn_run(char *const argv[], const char *stdin_data, size_t stdin_len, int timeout_ms, bool (*should_stop)(void),
	      struct spawn_result *r)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	pid_t pid;
	int64_t t0 = now_ns();
	memset(r, 0, sizeof *r);

	bool with_stdin = stdin_data != NULL;
	if ((with_stdin && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		int e = errno;
		close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]), close_fd(&err[0]), close_fd(&err[1]);
		r->exit = SPAWN_EXIT_NOEXEC;
		r->err = strdup(strerror(e));
		r->err_len = r->err ? strlen(r->err) : 0;
		return r->exit;
	}
	int rc = start(argv, with_stdin, in, out, err, &pid);
	close_fd(&in[0]), close_fd(&out[1]), close_fd(&err[1]);
	if (rc != 0) {
		close_fd(&in[1]), close_fd(&out[0]), close_fd(&err[0]);
		char msg[512];
		snprintf(msg, sizeof msg, "cannot run '%s': %s", argv[0], strerror(rc));
		r->exit = SPAWN_EXIT_NOEXEC;
		r->out = strdup("");
		r->err = strdup(msg);
		r->err_len = r->err ? strlen(r->err) : 0;
		return r->exit;
	}

	struct io_state s = { .in = in[1], .out = out[0], .err = err[0], .pidfd = open_pidfd(pid), .data = stdin_data, .len = stdin_len };
	if (s.in >= 0) {
		fcntl(s.in, F_SETFL, O_NONBLOCK);
		if (s.len == 0)
			close_fd(&s.in);
	}
	fcntl(s.out, F_SETFL, O_NONBLOCK);
	fcntl(s.err, F_SETFL, O_NONBLOCK);

	int64_t deadline = timeout_ms > 0 ? t0 + (int64_t)timeout_ms * 1000000 : INT64_MAX;
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno == ECHILD)) {
			/* Gone: take what is buffered, but do not wait for grandchildren that kept the pipes. */
			if (s.out >= 0)
				drain(&s.out, &s.o);
			if (s.err >= 0)
				drain(&s.err, &s.e);
			r->exit = exit_code(status);
			break;
		}
		int64_t now = now_ns();
		bool stop = should_stop && should_stop();
		if (now >= deadline || stop) {
			kill_group(pid);
			waitpid(pid, &status, 0);
			r->timed_out = !stop;
			r->stopped = stop;
			r->exit = stop ? SPAWN_EXIT_STOPPED : SPAWN_EXIT_TIMEOUT;
			break;
		}
		/* With a pidfd, poll wakes on exit; without one (old kernels), check every few ms. */
		int64_t left_ms = (deadline - now) / 1000000 + 1;
		int wait_ms = s.pidfd >= 0 ? 100 : (s.out < 0 && s.err < 0 ? 2 : 20);
		if (left_ms < wait_ms)
			wait_ms = (int)left_ms;
		pump(&s, wait_ms);
	}
	close_fd(&s.in), close_fd(&s.out), close_fd(&s.err), close_fd(&s.pidfd);
	r->out = cap_take(&s.o, &r->out_len);
	r->err = cap_take(&s.e, &r->err_len);
	r->ms = (long)((now_ns() - t0) / 1000000);
	if (r->timed_out) {
		char msg[96];
		snprintf(msg, sizeof msg, "%skilled after %d ms (timeout)", r->err_len ? "\n" : "", timeout_ms);
		struct cap c = { r->err, r->err_len, r->err_len + 1 };
		cap_put(&c, msg, strlen(msg));
		r->err = cap_take(&c, &r->err_len);
	}
	return r->exit;
}

void spawn_result_free(struct spawn_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}
