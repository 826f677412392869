/*
 * The state of one run shared by the orchestration (main.c), the op
 * implementations (io.c) and the final reads (final.c): one worker per plan
 * thread with its own fd cache, mapping cache and io_uring ring.
 */
#ifndef BF_RUNTIME_H
#define BF_RUNTIME_H

#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buffers.h"
#include "decode.h"
#include "plan.h"

/* An open fd of a path, per (path, O_DIRECT, O_DSYNC); writable or read-only. */
struct fd_entry {
	char *path;
	bool direct, dsync, writable;
	int fd;
};

/* A MAP_SHARED mapping of [0, len) of a file, for mmap-read/mmap-write/msync. */
struct map_entry {
	char *path;
	int fd;
	uint8_t *addr;
	size_t len;
};

struct worker {
	int index;
	const struct op_list *ops;
	pthread_t tid;
	bool started;

	/* Guards fds and maps: an exec op in another thread may close them (closePrefix). */
	pthread_mutex_t cache_mu;
	struct fd_entry *fds;
	size_t nfds, capfds;
	struct map_entry *maps;
	size_t nmaps, capmaps;

	struct heap_cache heap;

	struct io_uring ring;
	bool ring_ready;
	/* An io_uring op was abandoned in flight: its buffer and the ring must stay as they are. */
	bool ring_abandoned;

	/* For the watchdog: when the current op started (0: not in a timed op) and which. */
	_Atomic int64_t busy_since;
	_Atomic int64_t cur_op;
	atomic_bool done;
	bool timed_out; /* main thread only */
};

/* A reusable barrier that can be aborted, so a stopping run never leaves a thread waiting. */
struct gbarrier {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int parties, waiting;
	unsigned long generation;
	bool aborted;
};

void gbarrier_init(struct gbarrier *b, int parties);
/* 0 once every party arrived, -1 when aborted. */
int gbarrier_wait(struct gbarrier *b);
void gbarrier_abort(struct gbarrier *b);

struct run_state {
	const struct plan *plan;
	struct cand_set cands;
	struct worker *workers;
	size_t nworkers;
	struct gbarrier barrier;
};

extern struct run_state g_run;
/* The signal (SIGTERM, SIGINT, SIGHUP) that asked the run to stop, or 0. */
extern volatile sig_atomic_t g_stop;
/* Set by the main thread when the program must stop (timeout or signal): threads finish their op and leave. */
extern atomic_bool g_abort;

/* For spawn_run: stop waiting for a child. */
bool run_should_stop(void);

struct op_result {
	int64_t ret;
	const char *errname; /* when ret == -1 without a signal */
	const char *signal; /* "SIGBUS" / "SIGSEGV" */
	bool has_data;
	struct runs data;
	int64_t us;
	/* The op never finished (aborted barrier, io_uring op left in flight): no result is reported. */
	bool abandoned;
};

/* io.c */
void run_op(struct worker *w, const struct op *op, struct op_result *r);
/* Close every cached fd and mapping of every worker whose path starts with prefix. */
void caches_close_prefix(const char *prefix);
/* Close a worker's fds, mappings and ring at its end. */
void worker_release(struct worker *w);
/* sync, then drop the page cache, dentries and inodes; 0 or an errno. */
int drop_caches(void);

/* final.c */
void final_read(const struct final_read *f, const struct cand_set *cs);

/* geometry.c */
void probe_geometry(const struct probe *p);

/* program.c: run the threads; how the program ended. */
enum program_end { PROGRAM_DONE, PROGRAM_TIMEOUT, PROGRAM_STOPPED, PROGRAM_FAILED };
enum program_end run_program(const struct plan *p);

#endif
