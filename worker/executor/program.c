/*
 * Running the program: one pthread per plan thread, started together, a
 * global barrier for `barrier` ops, and the main thread as watchdog. When an
 * op runs longer than opTimeoutMs, or SIGTERM/SIGINT arrives, the run is
 * aborted: the barrier releases everybody, threads are kicked out of
 * interruptible waits (SIGUSR1) and leave after their current op, and
 * threads stuck in the kernel are left behind after a grace period so that
 * teardown can still go as far as it can.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"
#include "util.h"

struct run_state g_run;
volatile sig_atomic_t g_stop;
atomic_bool g_abort;

/* How long aborted threads get to leave before teardown goes ahead without them. */
#define GRACE_MS 2000
#define TICK_MS 10

bool run_should_stop(void)
{
	return g_stop || atomic_load(&g_abort);
}

/* ------------------------------------------------------------ barrier */

/*
 * Not pthread_barrier_t: a run that stops must be able to release threads
 * already waiting, or they (and teardown) would wait forever.
 */
void gbarrier_init(struct gbarrier *b, int parties)
{
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->parties = parties;
	b->waiting = 0;
	b->generation = 0;
	b->aborted = false;
}

int gbarrier_wait(struct gbarrier *b)
{
	pthread_mutex_lock(&b->mu);
	unsigned long gen = b->generation;
	if (!b->aborted && ++b->waiting == b->parties) {
		b->waiting = 0;
		b->generation++;
		pthread_cond_broadcast(&b->cv);
	} else
		while (gen == b->generation && !b->aborted)
			pthread_cond_wait(&b->cv, &b->mu);
	bool ok = gen != b->generation;
	pthread_mutex_unlock(&b->mu);
	return ok ? 0 : -1;
}

void gbarrier_abort(struct gbarrier *b)
{
	pthread_mutex_lock(&b->mu);
	b->aborted = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* ------------------------------------------------------------ workers */

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;

static void emit_result(const struct worker *w, const struct op *op, const struct op_result *r)
{
	/* One writer per thread, reused: no allocation per op. */
	static __thread struct jw j;
	if (!j.cap)
		jw_init(&j);
	else
		jw_reset(&j);
	jw_obj_begin(&j);
	jw_kstr(&j, "ev", "result");
	jw_kint(&j, "op", op->id);
	jw_kint(&j, "thread", w->index);
	jw_kint(&j, "ret", r->ret);
	if (r->signal)
		jw_kstr(&j, "signal", r->signal);
	else if (r->ret < 0 && r->errname)
		jw_kstr(&j, "errno", r->errname);
	if (r->has_data) {
		jw_key(&j, "data");
		runs_to_json(&j, &r->data);
	}
	jw_kint(&j, "us", r->us);
	jw_obj_end(&j);
	emit_batched(&j);
	if (j.cap > (1 << 20))
		jw_free(&j); /* do not keep a huge decode result around */
}

/* BLOCKFARM_EXEC_STATS=1: per thread, ops done and their rate, on stderr (for benchmarks). */
static void print_stats(const struct worker *w, size_t done, int64_t first, int64_t last, int64_t us)
{
	if (!getenv("BLOCKFARM_EXEC_STATS") || !done)
		return;
	double ms = (double)(last - first) / 1e6;
	fprintf(stderr, "stats: thread %d: %zu ops in %.1f ms = %.0f ops/s, %.2f us/op of which %.2f us in syscalls\n", w->index, done, ms,
		ms > 0 ? (double)done / ms * 1e3 : 0.0, ms * 1e3 / (double)done, (double)us / (double)done);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	size_t done = 0;
	int64_t first = 0, last = 0, us = 0;
	for (size_t k = 0; k < w->ops->n && !atomic_load(&g_abort); k++) {
		const struct op *op = &w->ops->v[k];
		/* Waiting at a barrier is waiting for the others, who are timed themselves. */
		if (op->kind != OP_BARRIER) {
			atomic_store(&w->cur_op, op->id);
			atomic_store(&w->busy_since, now_ns());
		}
		struct op_result r;
		int64_t t0 = now_ns();
		run_op(w, op, &r);
		atomic_store(&w->busy_since, 0);
		if (r.abandoned)
			break;
		emit_result(w, op, &r);
		runs_free(&r.data);
		if (!first)
			first = t0;
		last = now_ns();
		us += r.us;
		done++;
	}
	print_stats(w, done, first, last, us);
	worker_release(w);
	pthread_mutex_lock(&done_mu);
	atomic_store(&w->done, true);
	pthread_cond_signal(&done_cv);
	pthread_mutex_unlock(&done_mu);
	return NULL;
}

static void on_kick(int sig)
{
	(void)sig; /* only there to make blocking calls return EINTR */
}

static void emit_timeout(const struct worker *w, int64_t op, int64_t ms)
{
	struct jw j;
	jw_init(&j);
	jw_obj_begin(&j);
	jw_kstr(&j, "ev", "timeout");
	jw_kint(&j, "op", op);
	jw_kint(&j, "thread", w->index);
	jw_kint(&j, "ms", ms);
	jw_obj_end(&j);
	emit(&j);
	jw_free(&j);
}

/* Threads whose current op ran past the limit get a timeout event; true when any did. */
static bool check_timeouts(const struct plan *p, int64_t now)
{
	bool any = false;
	for (size_t t = 0; t < g_run.nworkers; t++) {
		struct worker *w = &g_run.workers[t];
		int64_t since = atomic_load(&w->busy_since);
		if (!since || w->timed_out || atomic_load(&w->done))
			continue;
		int64_t ms = (now - since) / 1000000;
		if (ms < p->op_timeout_ms)
			continue;
		w->timed_out = true;
		emit_timeout(w, atomic_load(&w->cur_op), ms);
		any = true;
	}
	return any;
}

static size_t count_done(void)
{
	size_t n = 0;
	for (size_t t = 0; t < g_run.nworkers; t++)
		n += g_run.workers[t].started ? atomic_load(&g_run.workers[t].done) : 1;
	return n;
}

static void abort_all(void)
{
	atomic_store(&g_abort, true);
	gbarrier_abort(&g_run.barrier);
	for (size_t t = 0; t < g_run.nworkers; t++) {
		struct worker *w = &g_run.workers[t];
		if (w->started && !atomic_load(&w->done))
			pthread_kill(w->tid, SIGUSR1);
	}
}

static bool start_workers(const struct plan *p)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_kick; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);

	/* Workers inherit this mask: the stop signals go to the main thread, whose waits they interrupt. */
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	bool ok = true;
	for (size_t t = 0; t < g_run.nworkers && ok; t++) {
		struct worker *w = &g_run.workers[t];
		w->index = (int)t;
		w->ops = &p->threads[t];
		pthread_mutex_init(&w->cache_mu, NULL);
		int e = pthread_create(&w->tid, NULL, worker_main, w);
		if (e) {
			fprintf(stderr, "pthread_create: %s\n", strerror(e));
			ok = false;
		} else
			w->started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ok;
}

enum program_end run_program(const struct plan *p)
{
	g_run.nworkers = p->nthreads;
	g_run.workers = calloc(p->nthreads ? p->nthreads : 1, sizeof *g_run.workers);
	if (!g_run.workers)
		return PROGRAM_FAILED;
	gbarrier_init(&g_run.barrier, (int)p->nthreads);

	enum program_end end = start_workers(p) ? PROGRAM_DONE : PROGRAM_FAILED;
	if (end == PROGRAM_FAILED)
		abort_all();
	int64_t grace_until = end == PROGRAM_FAILED ? now_ns() + (int64_t)GRACE_MS * 1000000 : 0;

	pthread_mutex_lock(&done_mu);
	while (count_done() < g_run.nworkers) {
		int64_t now = now_ns();
		if (end == PROGRAM_DONE && check_timeouts(p, now))
			end = PROGRAM_TIMEOUT;
		if (end == PROGRAM_DONE && g_stop)
			end = PROGRAM_STOPPED;
		if (end != PROGRAM_DONE) {
			if (!grace_until)
				grace_until = now + (int64_t)GRACE_MS * 1000000;
			if (now >= grace_until)
				break; /* leave the stuck ones behind */
			abort_all(); /* again each tick: a kick can land just before a thread blocks */
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_MS * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&done_cv, &done_mu, &ts);
		events_flush(); /* bound how long a result waits in the batch */
	}
	pthread_mutex_unlock(&done_mu);

	for (size_t t = 0; t < g_run.nworkers; t++) {
		struct worker *w = &g_run.workers[t];
		if (!w->started)
			continue;
		if (atomic_load(&w->done))
			pthread_join(w->tid, NULL);
		else
			fprintf(stderr, "thread %zu is stuck in op %lld; tearing down without it\n", t, (long long)atomic_load(&w->cur_op));
	}
	return end;
}
