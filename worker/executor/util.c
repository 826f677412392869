/* Clocks, errno names and event output; see util.h. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * errno(3) names. Where Linux gives two names one number, the first listed
 * wins, which is the name the model uses (EAGAIN, not EWOULDBLOCK; EOPNOTSUPP,
 * not ENOTSUP; EDEADLK, not EDEADLOCK).
 */
#define N(e) { e, #e }
static const struct {
	int e;
	const char *name;
} NAMES[] = {
	N(EPERM), N(ENOENT), N(ESRCH), N(EINTR), N(EIO), N(ENXIO), N(E2BIG), N(ENOEXEC), N(EBADF), N(ECHILD),
	N(EAGAIN), N(ENOMEM), N(EACCES), N(EFAULT), N(ENOTBLK), N(EBUSY), N(EEXIST), N(EXDEV), N(ENODEV), N(ENOTDIR),
	N(EISDIR), N(EINVAL), N(ENFILE), N(EMFILE), N(ENOTTY), N(ETXTBSY), N(EFBIG), N(ENOSPC), N(ESPIPE), N(EROFS),
	N(EMLINK), N(EPIPE), N(EDOM), N(ERANGE), N(EDEADLK), N(ENAMETOOLONG), N(ENOLCK), N(ENOSYS), N(ENOTEMPTY),
	N(ELOOP), N(ENOMSG), N(EIDRM), N(ENOSTR), N(ENODATA), N(ETIME), N(ENOSR), N(ENOLINK), N(EPROTO), N(EBADMSG),
	N(EOVERFLOW), N(EILSEQ), N(EUSERS), N(ENOTSOCK), N(EOPNOTSUPP), N(ENOBUFS), N(ETIMEDOUT), N(EALREADY),
	N(EINPROGRESS), N(ESTALE), N(EUCLEAN), N(EREMOTEIO), N(EDQUOT), N(ENOMEDIUM), N(EMEDIUMTYPE), N(ECANCELED),
	N(ENOKEY), N(EKEYEXPIRED), N(EKEYREVOKED), N(EKEYREJECTED), N(EOWNERDEAD), N(ENOTRECOVERABLE), N(ERFKILL),
	N(EHWPOISON), N(ENOTSUP), N(EWOULDBLOCK), N(EDEADLOCK), N(ENOTCONN), N(ECONNRESET), N(ECONNREFUSED),
	N(EADDRINUSE), N(EHOSTUNREACH), N(ENETDOWN), N(ENETUNREACH), N(EBADFD), N(EBADE), N(EBADR), N(EBADRQC),
	N(EBADSLT), N(ECHRNG), N(ECOMM), N(EISNAM), N(ENAVAIL), N(ENOANO), N(ENOCSI), N(ENOPKG), N(ENOTUNIQ),
	N(EREMCHG), N(ERESTART), N(ESTRPIPE), N(EXFULL), N(EL2HLT), N(EL2NSYNC), N(EL3HLT), N(EL3RST),
	N(ELIBACC), N(ELIBBAD), N(ELIBEXEC), N(ELIBMAX), N(ELIBSCN), N(ELNRNG), N(EUNATCH), N(EPROTONOSUPPORT),
	N(EPROTOTYPE), N(ENOPROTOOPT), N(EAFNOSUPPORT), N(EADDRNOTAVAIL), N(EMSGSIZE), N(EDESTADDRREQ), N(ECONNABORTED),
	N(EISCONN), N(ESHUTDOWN), N(ETOOMANYREFS), N(EHOSTDOWN), N(ENETRESET), N(ESOCKTNOSUPPORT), N(EPFNOSUPPORT),
	N(EREMOTE), N(ESRMNT), N(EDOTDOT), N(ENONET),
};
#undef N

const char *errno_name(int e)
{
	for (size_t k = 0; k < sizeof NAMES / sizeof NAMES[0]; k++)
		if (NAMES[k].e == e)
			return NAMES[k].name;
	static __thread char buf[24];
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

static pthread_mutex_t emit_mu = PTHREAD_MUTEX_INITIALIZER;
static bool emit_closed;

/*
 * Op results are batched: one write(2) per line cost more than the executor's
 * own work per op (fio's overhead is well under a microsecond). A batch goes
 * out when it would pass BATCH_BYTES, when it is older than BATCH_NS, before
 * any other event (so the order on stdout stays the order of emission), and
 * from events_flush() (the watchdog calls it on every tick). A SIGKILLed
 * executor can so lose at most the last BATCH_NS of results, never set-up
 * events, which the caller needs to undo what was built.
 */
#define BATCH_BYTES (64 * 1024)
#define BATCH_NS (20 * 1000 * 1000LL)
static char batch[BATCH_BYTES];
static size_t batch_len;
static int64_t batch_since;

static void write_all(const char *p, size_t left)
{
	while (left) {
		ssize_t n = write(1, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nobody listens any more; keep running so teardown still happens */
		p += n;
		left -= (size_t)n;
	}
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void flush_locked(void)
{
	if (batch_len && !emit_closed)
		write_all(batch, batch_len);
	batch_len = 0;
}

static void emit_line(struct jw *w, bool batched)
{
	if (w->oom)
		return;
	pthread_mutex_lock(&emit_mu);
	if (!emit_closed) {
		/* The terminating NUL becomes the newline. */
		w->buf[w->len] = '\n';
		size_t n = w->len + 1;
		if (!batched || batch_len + n > sizeof batch)
			flush_locked();
		if (!batched || n > sizeof batch) {
			write_all(w->buf, n);
		} else {
			if (batch_len == 0)
				batch_since = mono_ns();
			memcpy(batch + batch_len, w->buf, n);
			batch_len += n;
			if (mono_ns() - batch_since > BATCH_NS)
				flush_locked();
		}
		w->buf[w->len] = 0;
	}
	pthread_mutex_unlock(&emit_mu);
}

void emit(struct jw *w)
{
	emit_line(w, false);
}

void emit_batched(struct jw *w)
{
	emit_line(w, true);
}

void events_flush(void)
{
	pthread_mutex_lock(&emit_mu);
	flush_locked();
	pthread_mutex_unlock(&emit_mu);
}

void events_close(void)
{
	pthread_mutex_lock(&emit_mu);
	flush_locked();
	emit_closed = true;
	pthread_mutex_unlock(&emit_mu);
}

bool read_small_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return true;
}
