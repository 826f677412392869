/*
 * The plan (ExecPlan in protocol.ts) as C structures, parsed and validated
 * once: whatever passes plan_parse is safe to run (no access outside a
 * mapping, no undefined ${name}, barrier sequences that cannot deadlock).
 */
#ifndef BF_PLAN_H
#define BF_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* An argv: a NULL-terminated array of templates. */
struct argv_t {
	char **v;
	size_t n;
};

struct step {
	char *name;
	struct argv_t argv;
	char *capture; /* or NULL */
	struct argv_t undo; /* n == 0: nothing to undo */
	char *stdin_data; /* or NULL */
	size_t stdin_len;
	int timeout_ms;
};

enum placement { BUF_HEAP, BUF_ANON, BUF_MMAP };

struct buffer_spec {
	enum placement placement;
	int64_t align;
	int64_t touched_pages; /* anon */
	char *path; /* mmap */
	int64_t offset; /* mmap */
};

enum op_kind {
	OP_READ,
	OP_WRITE,
	OP_MMAP_WRITE,
	OP_MMAP_READ,
	OP_MSYNC,
	OP_FALLOCATE,
	OP_TRUNCATE,
	OP_FSYNC,
	OP_SYNC_FILE_RANGE,
	OP_FLUSH,
	OP_DROP_CACHES,
	OP_DISCARD,
	OP_LOOP_SET_DIRECT_IO,
	OP_LOOP_SET_BLOCK_SIZE,
	OP_CORRUPT,
	OP_EXEC,
	OP_BARRIER,
	OP_SLEEP,
};

enum via { VIA_PSYNC, VIA_PVEC, VIA_URING };
enum msync_mode { MSYNC_SYNC, MSYNC_ASYNC, MSYNC_INVALIDATE };
enum discard_mode { DISCARD_DISCARD, DISCARD_ZEROOUT, DISCARD_SECURE };

struct op {
	enum op_kind kind;
	int64_t id;
	char *path; /* template; replaced by its substitution after set-up */
	int64_t offset, length;
	int64_t map_length; /* mmap-*, msync */
	int64_t size; /* truncate, loop-set-block-size */
	int64_t mode; /* fallocate: raw flags */
	int64_t flags; /* sync-file-range: raw flags */
	enum via via;
	bool nowait, direct, dsync, data_only, on;
	int vectors;
	struct buffer_spec buf;
	enum msync_mode msync_mode;
	enum discard_mode discard_mode;
	struct argv_t *argvs; /* exec */
	size_t nargvs;
	char *close_prefix; /* exec, or NULL */
	char *barrier; /* barrier name */
	int64_t ms; /* sleep */
};

struct op_list {
	struct op *v;
	size_t n;
};

struct probe {
	char *id;
	char *path;
	bool block;
};

struct final_read {
	char *id;
	char *path;
	bool block;
	bool has_ranges;
	int64_t (*ranges)[2];
	size_t nranges;
};

struct check {
	char *name;
	struct argv_t argv;
	int timeout_ms;
};

struct plan {
	uint32_t seed;
	int op_timeout_ms;
	struct step *steps;
	size_t nsteps;
	struct probe *probes;
	size_t nprobes;
	struct op_list *threads;
	size_t nthreads;
	struct final_read *finals;
	size_t nfinals;
	int64_t (*cands)[2];
	size_t ncands;
	struct check *checks;
	size_t nchecks;
	/* A run that reaches its end leaves what set-up built (the target runs the next program on it). */
	bool keep_stack;
};

/* Largest single IO or mapping the executor accepts (the case language caps IO at 64 MiB). */
#define PLAN_MAX_IO (256LL << 20)

/* Fill *p from a parsed document. false with a message naming the bad field otherwise. */
bool plan_parse(const struct jval *doc, struct plan *p, char *err, size_t errlen);

#endif
