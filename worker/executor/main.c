/*
 * blockfarm-exec: runs one ExecPlan (worker/executor/protocol.ts) read from
 * stdin and reports newline-delimited JSON events on stdout.
 *
 *   set-up steps in order -> geometry probes -> the program's threads ->
 *   sync + drop caches -> final reads -> checks -> undo steps in reverse
 *
 * The undo steps of every set-up step that succeeded run on every path: a
 * failed step, an op timeout, SIGTERM/SIGINT/SIGHUP; on the normal end too,
 * unless the plan says keepStack (then the target owns the stack and its undo). Exit codes: 0 the plan
 * ran to the end, 2 bad plan, 3 a set-up step failed, 4 internal error,
 * 5 cut short by an op timeout or a signal.
 *
 * `blockfarm-exec --pattern` and `--decode` expose the data pattern and the
 * decoder to the tests (see tools.c).
 *
 * The plan and what hangs off it live until the process exits; nothing is
 * freed on purpose.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guard.h"
#include "json.h"
#include "plan.h"
#include "runtime.h"
#include "spawn.h"
#include "tools.h"
#include "util.h"

enum { EXIT_OK = 0, EXIT_BAD_PLAN = 2, EXIT_SETUP_FAILED = 3, EXIT_INTERNAL = 4, EXIT_CUT_SHORT = 5 };

/* Longest stderr/output kept in one event line. */
#define EVENT_TEXT_MAX (16 * 1024)
#define MAX_PLAN (256 << 20)

static void on_stop(int sig)
{
	g_stop = sig;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a stop signal must interrupt the main thread's waits (poll, nanosleep). */
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A reader that went away must not kill us before teardown. */
	signal(SIGPIPE, SIG_IGN);
	/* waitpid needs children to stay around until reaped. */
	signal(SIGCHLD, SIG_DFL);
	guard_install();
}

/* Set-up tools live in sbin; make sure a minimal environment still finds them. */
static void ensure_path(void)
{
	const char *path = getenv("PATH");
	if (!path || !*path) {
		setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
		return;
	}
	if (strstr(path, "/usr/sbin") && strstr(path, "/sbin"))
		return;
	size_t n = strlen(path) + 32;
	char *p = malloc(n);
	if (!p)
		return;
	snprintf(p, n, "%s:/usr/sbin:/sbin", path);
	setenv("PATH", p, 1);
	free(p);
}

static void emit_done(bool ok, const char *message)
{
	struct jw w;
	jw_init(&w);
	jw_obj_begin(&w);
	jw_kstr(&w, "ev", "done");
	jw_kbool(&w, "ok", ok);
	if (message)
		jw_kstr(&w, "message", message);
	jw_obj_end(&w);
	emit(&w);
	jw_free(&w);
}

/* The final line, then leave without waiting for threads stuck in the kernel. */
static void finish(int code, bool ok, const char *message)
{
	if (message)
		fprintf(stderr, "blockfarm-exec: %s\n", message);
	emit_done(ok, message);
	events_close();
	_exit(code);
}

/* What set-up has done so far, so that an internal error can still undo it. */
static struct {
	const struct plan *plan;
	size_t done;
	const struct vars *vars;
} g_setup;

static void teardown_and_finish(const struct plan *p, size_t done, const struct vars *vars, int code, bool ok, const char *why);

/* An internal error (out of memory): undo what was set up, then exit 4. */
static void fail_internal(const char *why)
{
	if (g_setup.plan)
		teardown_and_finish(g_setup.plan, g_setup.done, g_setup.vars, EXIT_INTERNAL, false, why);
	finish(EXIT_INTERNAL, false, why);
}

static char *read_stdin(size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n == cap) {
			if (cap >= MAX_PLAN) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			char *b = realloc(buf, cap *= 2);
			if (!b)
				break;
			buf = b;
		}
		ssize_t k = read(0, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		if (k == 0) {
			*len = n;
			return buf;
		}
		n += (size_t)k;
	}
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------ set-up and undo */

static void jw_text(struct jw *w, const char *key, const char *s, size_t n)
{
	jw_key(w, key);
	jw_strn(w, s ? s : "", n > EVENT_TEXT_MAX ? EVENT_TEXT_MAX : n);
}

static bool run_step(const struct plan *p, size_t k, struct vars *vars)
{
	const struct step *s = &p->steps[k];
	char **argv = subst_argv(vars, s->argv.v, s->argv.n);
	char *in = s->stdin_data ? subst(vars, s->stdin_data) : NULL;
	struct spawn_result r;
	if (!argv || (s->stdin_data && !in))
		fail_internal("out of memory");
	spawn_run(argv, in, in ? strlen(in) : 0, s->timeout_ms, run_should_stop, &r);
	free_argv(argv);
	free(in);

	bool ok = r.exit == 0;
	char *captured = ok && s->capture ? first_line(r.out ? r.out : "") : NULL;
	if (captured && !vars_set(vars, s->capture, captured)) {
		/* The step did its work: undo it too. */
		g_setup.done = k + 1;
		fail_internal("out of memory");
	}

	struct jw w;
	jw_init(&w);
	jw_obj_begin(&w);
	jw_kstr(&w, "ev", "setup");
	jw_kint(&w, "step", (int64_t)k);
	jw_kstr(&w, "name", s->name);
	jw_kbool(&w, "ok", ok);
	if (captured)
		jw_kstr(&w, "captured", captured);
	if (!ok) {
		jw_kint(&w, "exit", r.exit);
		jw_text(&w, "stderr", r.err, r.err_len);
	}
	jw_kint(&w, "ms", r.ms);
	jw_obj_end(&w);
	emit(&w);
	jw_free(&w);
	free(captured);
	spawn_result_free(&r);
	return ok;
}

/* Undo steps[0, done) in reverse order. Never stopped by signals: leaving things attached is worse. */
static int undo_all(const struct plan *p, size_t done, const struct vars *vars)
{
	int failed = 0;
	for (size_t k = done; k-- > 0;) {
		const struct step *s = &p->steps[k];
		if (!s->undo.n)
			continue;
		char **argv = subst_argv(vars, s->undo.v, s->undo.n);
		struct spawn_result r;
		if (!argv) {
			failed++;
			continue;
		}
		spawn_run(argv, NULL, 0, s->timeout_ms, NULL, &r);
		free_argv(argv);
		struct jw w;
		jw_init(&w);
		jw_obj_begin(&w);
		jw_kstr(&w, "ev", "undo");
		jw_kint(&w, "step", (int64_t)k);
		jw_kstr(&w, "name", s->name);
		jw_kbool(&w, "ok", r.exit == 0);
		jw_kint(&w, "exit", r.exit);
		if (r.exit != 0) {
			jw_text(&w, "stderr", r.err, r.err_len);
			failed++;
		}
		jw_obj_end(&w);
		emit(&w);
		jw_free(&w);
		spawn_result_free(&r);
	}
	return failed;
}

static void run_check(const struct check *c, const struct vars *vars)
{
	char **argv = subst_argv(vars, c->argv.v, c->argv.n);
	if (!argv)
		fail_internal("out of memory");
	struct spawn_result r;
	spawn_run(argv, NULL, 0, c->timeout_ms, run_should_stop, &r);
	free_argv(argv);
	/* stdout then stderr, as a person would read them. */
	size_t n = r.out_len + r.err_len;
	char *out = malloc(n + 1);
	if (out) {
		memcpy(out, r.out, r.out_len);
		memcpy(out + r.out_len, r.err, r.err_len);
		out[n] = 0;
	}
	struct jw w;
	jw_init(&w);
	jw_obj_begin(&w);
	jw_kstr(&w, "ev", "check");
	jw_kstr(&w, "name", c->name);
	jw_kint(&w, "exit", r.exit);
	jw_text(&w, "output", out, out ? n : 0);
	jw_kint(&w, "ms", r.ms);
	jw_obj_end(&w);
	emit(&w);
	jw_free(&w);
	free(out);
	spawn_result_free(&r);
}

/* Replace every template in the program, probes and final reads by its value. */
static void resolve(struct plan *p, const struct vars *v)
{
#define RESOLVE(field)                                                              \
	do {                                                                        \
		if (field) {                                                        \
			char *s_ = subst(v, field);                                 \
			if (!s_)                                                    \
				fail_internal("out of memory");                     \
			field = s_;                                                 \
		}                                                                   \
	} while (0)
	for (size_t t = 0; t < p->nthreads; t++)
		for (size_t k = 0; k < p->threads[t].n; k++) {
			struct op *op = &p->threads[t].v[k];
			RESOLVE(op->path);
			RESOLVE(op->buf.path);
			RESOLVE(op->close_prefix);
			for (size_t a = 0; a < op->nargvs; a++)
				for (size_t i = 0; i < op->argvs[a].n; i++)
					RESOLVE(op->argvs[a].v[i]);
		}
	for (size_t k = 0; k < p->nprobes; k++)
		RESOLVE(p->probes[k].path);
	for (size_t k = 0; k < p->nfinals; k++)
		RESOLVE(p->finals[k].path);
#undef RESOLVE
}

/*
 * Give each candidate whose op is a write of this plan the range where its
 * bytes can be (see decode.h), then index them: with thousands of (op,
 * delta) candidates a run start would otherwise try every one of them.
 */
struct written {
	int64_t id, offset, length;
};

static int by_id(const void *a, const void *b)
{
	const struct written *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static bool index_candidates(const struct plan *p, struct cand_set *cs)
{
	size_t n = 0;
	for (size_t t = 0; t < p->nthreads; t++)
		n += p->threads[t].n;
	struct written *w = calloc(n ? n : 1, sizeof *w);
	if (!w)
		return false;
	size_t nw = 0;
	for (size_t t = 0; t < p->nthreads; t++)
		for (size_t i = 0; i < p->threads[t].n; i++) {
			const struct op *op = &p->threads[t].v[i];
			if (op->kind == OP_WRITE || op->kind == OP_MMAP_WRITE)
				w[nw++] = (struct written){ op->id, op->offset, op->length };
		}
	qsort(w, nw, sizeof *w, by_id);
	for (size_t k = 0; k < cs->n; k++) {
		struct written key = { .id = cs->v[k].op };
		const struct written *x = bsearch(&key, w, nw, sizeof *w, by_id);
		if (x)
			cand_set_home(cs, k, x->offset - cs->v[k].delta, x->offset + x->length - cs->v[k].delta);
	}
	free(w);
	return cand_set_index(cs);
}

static const char *stop_reason(void)
{
	return g_stop == SIGINT ? "interrupted by SIGINT" : g_stop == SIGHUP ? "interrupted by SIGHUP" : "interrupted by SIGTERM";
}

/* Undo what was set up and leave with `code`. */
static void teardown_and_finish(const struct plan *p, size_t done, const struct vars *vars, int code, bool ok, const char *why)
{
	g_setup.plan = NULL; /* undone once, whatever happens next */
	int failed = undo_all(p, done, vars);
	char msg[512];
	if (failed)
		snprintf(msg, sizeof msg, "%s%s%d undo step(s) failed", why ? why : "", why ? "; " : "", failed);
	finish(code, ok, failed ? msg : why);
}

static void parse_or_exit(struct plan *p)
{
	size_t len;
	char err[512];
	char *text = read_stdin(&len);
	if (!text) {
		snprintf(err, sizeof err, "bad plan: cannot read stdin: %s", strerror(errno));
		finish(EXIT_BAD_PLAN, false, err);
	}
	char jerr[256];
	struct jval *doc = json_parse(text, len, jerr, sizeof jerr);
	free(text);
	if (!doc) {
		snprintf(err, sizeof err, "bad plan: not JSON: %s", jerr);
		finish(EXIT_BAD_PLAN, false, err);
	}
	if (!plan_parse(doc, p, jerr, sizeof jerr)) {
		snprintf(err, sizeof err, "bad plan: %s", jerr);
		finish(EXIT_BAD_PLAN, false, err);
	}
	json_free(doc);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return tool_main(argc, argv);
	install_signals();
	ensure_path();

	static struct plan plan;
	static struct vars vars;
	parse_or_exit(&plan);
	g_run.plan = &plan;
	if (!cand_set_init(&g_run.cands, plan.seed, (const int64_t(*)[2])plan.cands, plan.ncands) ||
	    !index_candidates(&plan, &g_run.cands))
		finish(EXIT_INTERNAL, false, "out of memory");

	size_t done = 0;
	g_setup.plan = &plan;
	g_setup.vars = &vars;
	for (; done < plan.nsteps; g_setup.done = ++done) {
		if (g_stop)
			teardown_and_finish(&plan, done, &vars, EXIT_CUT_SHORT, false, stop_reason());
		if (!run_step(&plan, done, &vars)) {
			char why[300];
			if (g_stop)
				snprintf(why, sizeof why, "%s during set-up step %zu (%s)", stop_reason(), done, plan.steps[done].name);
			else
				snprintf(why, sizeof why, "set-up step %zu (%s) failed", done, plan.steps[done].name);
			teardown_and_finish(&plan, done, &vars, g_stop ? EXIT_CUT_SHORT : EXIT_SETUP_FAILED, false, why);
		}
	}
	resolve(&plan, &vars);

	for (size_t k = 0; k < plan.nprobes && !g_stop; k++)
		probe_geometry(&plan.probes[k]);

	switch (g_stop ? PROGRAM_STOPPED : run_program(&plan)) {
	case PROGRAM_DONE:
		break;
	case PROGRAM_TIMEOUT:
		teardown_and_finish(&plan, done, &vars, EXIT_CUT_SHORT, false, "an op timed out");
		break;
	case PROGRAM_STOPPED:
		teardown_and_finish(&plan, done, &vars, EXIT_CUT_SHORT, false, stop_reason());
		break;
	case PROGRAM_FAILED:
		teardown_and_finish(&plan, done, &vars, EXIT_INTERNAL, false, "could not start the program's threads");
		break;
	}

	/* Final reads see what the device holds, not what the page cache remembers. */
	int e = plan.nfinals ? drop_caches() : 0;
	if (e)
		fprintf(stderr, "drop caches: %s\n", strerror(e));
	for (size_t k = 0; k < plan.nfinals && !g_stop; k++)
		final_read(&plan.finals[k], &g_run.cands);
	for (size_t k = 0; k < plan.nchecks && !g_stop; k++)
		run_check(&plan.checks[k], &vars);
	if (g_stop)
		teardown_and_finish(&plan, done, &vars, EXIT_CUT_SHORT, false, stop_reason());
	if (plan.keep_stack) {
		g_setup.plan = NULL;
		finish(EXIT_OK, true, NULL);
	}
	teardown_and_finish(&plan, done, &vars, EXIT_OK, true, NULL);
	return EXIT_OK;
}
