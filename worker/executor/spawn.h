/*
 * Running argv arrays: ${name} substitution from captured values, then
 * posix_spawnp (no shell, ever), feeding stdin, capturing stdout and stderr,
 * killing the child's process group on timeout or when asked to stop.
 */
#ifndef BF_SPAWN_H
#define BF_SPAWN_H

#include <stdbool.h>
#include <stddef.h>

/* Captured values: `capture: name` -> the first line of a step's stdout. */
struct vars {
	char **names;
	char **values;
	size_t n;
};

bool vars_set(struct vars *v, const char *name, const char *value);

/* The template with every ${name} replaced; NULL when out of memory (names were validated at plan intake). */
char *subst(const struct vars *v, const char *tmpl);
/* A NULL-terminated argv of substituted copies, or NULL. */
char **subst_argv(const struct vars *v, char *const *tmpl, size_t n);
void free_argv(char **argv);

/* Exit statuses that are not the program's own. */
#define SPAWN_EXIT_TIMEOUT 124 /* like timeout(1) */
#define SPAWN_EXIT_NOEXEC 127 /* could not start: the reason is in err */
#define SPAWN_EXIT_STOPPED 130 /* killed because the executor was told to stop */

struct spawn_result {
	int exit; /* the exit code, 128 + signal when killed, or one of the SPAWN_EXIT_* */
	bool timed_out;
	bool stopped;
	char *out; /* stdout, NUL-terminated, at most SPAWN_OUT_MAX bytes kept */
	size_t out_len;
	char *err; /* stderr, likewise */
	size_t err_len;
	long ms;
};

#define SPAWN_OUT_MAX (1 << 20)

/*
 * Run argv to completion. timeout_ms <= 0: no limit. should_stop (may be
 * NULL) is polled while waiting; when it returns true the child's process
 * group is killed. The result's buffers are owned by the caller (spawn_result_free).
 */
int spawn_run(char *const argv[], const char *stdin_data, size_t stdin_len, int timeout_ms, bool (*should_stop)(void),
	      struct spawn_result *r);
void spawn_result_free(struct spawn_result *r);

/* The first line of s (without the newline), newly allocated. */
char *first_line(const char *s);

#endif
