/*
 * Plan intake: JSON tree -> struct plan, with every check that keeps the
 * run itself safe. Kernel-facing values (fallocate modes, flags, offsets
 * past EOF) are passed through untouched: judging them is the model's job.
 * Unknown keys are ignored so that a newer TS side can add optional fields.
 */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pc {
	char *err;
	size_t errlen;
	char where[160];
};

static bool bad(struct pc *c, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s", c->where, msg);
	return false;
}

static void at(struct pc *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->where, sizeof c->where, fmt, ap);
	va_end(ap);
}

static bool want_obj(struct pc *c, const struct jval *v)
{
	return v && v->t == J_OBJ ? true : bad(c, "expected an object");
}

static const struct jval *field(struct pc *c, const struct jval *o, const char *key, bool required, bool *ok)
{
	const struct jval *v = json_get(o, key);
	if (!v && required)
		*ok = bad(c, "missing '%s'", key);
	return v;
}

static bool get_int(struct pc *c, const struct jval *o, const char *key, int64_t *out, bool required, int64_t def, int64_t min, int64_t max)
{
	bool ok = true;
	const struct jval *v = field(c, o, key, required, &ok);
	if (!ok)
		return false;
	if (!v) {
		*out = def;
		return true;
	}
	if (v->t != J_NUM || !v->is_int)
		return bad(c, "'%s' must be an integer", key);
	if (v->i < min || v->i > max)
		return bad(c, "'%s' = %lld is outside [%lld, %lld]", key, (long long)v->i, (long long)min, (long long)max);
	*out = v->i;
	return true;
}

static bool get_bool(struct pc *c, const struct jval *o, const char *key, bool *out, bool required, bool def)
{
	bool ok = true;
	const struct jval *v = field(c, o, key, required, &ok);
	if (!ok)
		return false;
	if (!v) {
		*out = def;
		return true;
	}
	if (v->t != J_BOOL)
		return bad(c, "'%s' must be a boolean", key);
	*out = v->b;
	return true;
}

static bool dup_str(struct pc *c, const struct jval *v, const char *what, char **out)
{
	if (v->t != J_STR)
		return bad(c, "%s must be a string", what);
	if (strlen(v->s) != v->len)
		return bad(c, "%s contains a NUL byte", what);
	*out = strdup(v->s);
	return *out ? true : bad(c, "out of memory");
}

static bool get_str(struct pc *c, const struct jval *o, const char *key, char **out, bool required)
{
	bool ok = true;
	const struct jval *v = field(c, o, key, required, &ok);
	if (!ok)
		return false;
	*out = NULL;
	if (!v)
		return true;
	char what[64];
	snprintf(what, sizeof what, "'%s'", key);
	return dup_str(c, v, what, out);
}

static bool get_enum(struct pc *c, const struct jval *o, const char *key, const char *const *names, int *out, bool required, int def)
{
	bool ok = true;
	const struct jval *v = field(c, o, key, required, &ok);
	if (!ok)
		return false;
	if (!v) {
		*out = def;
		return true;
	}
	if (v->t != J_STR)
		return bad(c, "'%s' must be a string", key);
	for (int k = 0; names[k]; k++)
		if (strcmp(v->s, names[k]) == 0) {
			*out = k;
			return true;
		}
	return bad(c, "'%s' has an unknown value '%s'", key, v->s);
}

static bool parse_argv(struct pc *c, const struct jval *v, const char *what, struct argv_t *out)
{
	if (!v || v->t != J_ARR || v->n == 0)
		return bad(c, "%s must be a non-empty array of strings", what);
	out->v = calloc(v->n + 1, sizeof *out->v);
	if (!out->v)
		return bad(c, "out of memory");
	out->n = v->n;
	for (size_t k = 0; k < v->n; k++)
		if (!dup_str(c, &v->items[k], what, &out->v[k]))
			return false;
	return true;
}

static bool get_argv(struct pc *c, const struct jval *o, const char *key, struct argv_t *out, bool required)
{
	bool ok = true;
	const struct jval *v = field(c, o, key, required, &ok);
	if (!ok)
		return false;
	memset(out, 0, sizeof *out);
	if (!v)
		return true;
	char what[64];
	snprintf(what, sizeof what, "'%s'", key);
	return parse_argv(c, v, what, out);
}

static const struct jval *get_arr(struct pc *c, const struct jval *o, const char *key, bool *ok)
{
	const struct jval *v = field(c, o, key, true, ok);
	if (!*ok)
		return NULL;
	if (v->t != J_ARR) {
		*ok = bad(c, "'%s' must be an array", key);
		return NULL;
	}
	return v;
}

/* ------------------------------------------------------------ sections */

static bool parse_step(struct pc *c, const struct jval *v, struct step *s)
{
	int64_t t;
	if (!want_obj(c, v) || !get_str(c, v, "name", &s->name, true) || !get_argv(c, v, "argv", &s->argv, true) ||
	    !get_str(c, v, "capture", &s->capture, false) || !get_argv(c, v, "undo", &s->undo, false) ||
	    !get_int(c, v, "timeoutMs", &t, false, 60000, 1, 24LL * 3600 * 1000))
		return false;
	s->timeout_ms = (int)t;
	const struct jval *in = json_get(v, "stdin");
	if (in) {
		if (in->t != J_STR)
			return bad(c, "'stdin' must be a string");
		s->stdin_data = malloc(in->len + 1);
		if (!s->stdin_data)
			return bad(c, "out of memory");
		memcpy(s->stdin_data, in->s, in->len + 1);
		s->stdin_len = in->len;
	}
	return true;
}

static bool parse_buffer(struct pc *c, const struct jval *v, struct buffer_spec *b)
{
	static const char *const placements[] = { "heap", "anon", "mmap", NULL };
	int pl;
	if (!v) {
		b->placement = BUF_HEAP;
		return true;
	}
	if (!want_obj(c, v) || !get_enum(c, v, "placement", placements, &pl, true, 0) ||
	    !get_int(c, v, "align", &b->align, false, 0, 0, 4095))
		return false;
	b->placement = (enum placement)pl;
	if (b->placement == BUF_ANON && !get_int(c, v, "touchedPages", &b->touched_pages, true, 0, 0, PLAN_MAX_IO / 4096 + 1))
		return false;
	if (b->placement == BUF_MMAP) {
		if (!get_str(c, v, "path", &b->path, true) || !get_int(c, v, "offset", &b->offset, true, 0, 0, INT64_MAX / 2))
			return false;
		if (b->offset % 4096 != 0)
			return bad(c, "a buffer mapping offset must be page aligned");
	}
	return true;
}

static const char *const OP_KINDS[] = {
	[OP_READ] = "read",
	[OP_WRITE] = "write",
	[OP_MMAP_WRITE] = "mmap-write",
	[OP_MMAP_READ] = "mmap-read",
	[OP_MSYNC] = "msync",
	[OP_FALLOCATE] = "fallocate",
	[OP_TRUNCATE] = "truncate",
	[OP_FSYNC] = "fsync",
	[OP_SYNC_FILE_RANGE] = "sync-file-range",
	[OP_FLUSH] = "flush",
	[OP_DROP_CACHES] = "drop-caches",
	[OP_DISCARD] = "discard",
	[OP_LOOP_SET_DIRECT_IO] = "loop-set-direct-io",
	[OP_LOOP_SET_BLOCK_SIZE] = "loop-set-block-size",
	[OP_CORRUPT] = "corrupt",
	[OP_EXEC] = "exec",
	[OP_BARRIER] = "barrier",
	[OP_SLEEP] = "sleep",
	NULL,
};

static const int64_t MAX_OFF = 1LL << 53;

static bool parse_io(struct pc *c, const struct jval *v, struct op *op)
{
	static const char *const vias[] = { "psync", "pvec", "io_uring", NULL };
	int via;
	int64_t vectors;
	if (!get_int(c, v, "offset", &op->offset, true, 0, 0, MAX_OFF) ||
	    !get_int(c, v, "length", &op->length, true, 0, 1, PLAN_MAX_IO) || !get_enum(c, v, "via", vias, &via, false, 0) ||
	    !get_bool(c, v, "nowait", &op->nowait, false, false) || !get_bool(c, v, "direct", &op->direct, false, false) ||
	    !get_bool(c, v, "dsync", &op->dsync, false, false) || !get_int(c, v, "vectors", &vectors, false, 1, 1, 1024) ||
	    !parse_buffer(c, json_get(v, "buffer"), &op->buf))
		return false;
	op->via = (enum via)via;
	op->vectors = (int)vectors;
	return true;
}

static bool parse_mapped(struct pc *c, const struct jval *v, struct op *op, bool ranged)
{
	if (!get_int(c, v, "mapLength", &op->map_length, true, 0, 1, 1LL << 40))
		return false;
	if (!ranged)
		return true;
	if (!get_int(c, v, "offset", &op->offset, true, 0, 0, MAX_OFF) ||
	    !get_int(c, v, "length", &op->length, true, 0, 1, PLAN_MAX_IO))
		return false;
	/* Touching memory past the mapping would hit whatever else is mapped there. */
	if (op->offset + op->length > op->map_length)
		return bad(c, "offset + length exceeds mapLength");
	return true;
}

static bool parse_exec(struct pc *c, const struct jval *v, struct op *op)
{
	bool ok = true;
	const struct jval *a = get_arr(c, v, "argvs", &ok);
	if (!ok)
		return false;
	op->argvs = calloc(a->n ? a->n : 1, sizeof *op->argvs);
	if (!op->argvs)
		return bad(c, "out of memory");
	op->nargvs = a->n;
	for (size_t k = 0; k < a->n; k++)
		if (!parse_argv(c, &a->items[k], "each of 'argvs'", &op->argvs[k]))
			return false;
	return get_str(c, v, "closePrefix", &op->close_prefix, false);
}

static bool parse_op(struct pc *c, const struct jval *v, struct op *op)
{
	static const char *const msyncs[] = { "sync", "async", "invalidate", NULL };
	static const char *const discards[] = { "discard", "zeroout", "secure", NULL };
	int kind, m;
	if (!want_obj(c, v) || !get_enum(c, v, "kind", OP_KINDS, &kind, true, 0) ||
	    !get_int(c, v, "id", &op->id, true, 0, 0, INT32_MAX))
		return false;
	op->kind = (enum op_kind)kind;
	bool pathless = op->kind == OP_DROP_CACHES || op->kind == OP_EXEC || op->kind == OP_BARRIER || op->kind == OP_SLEEP;
	if (!pathless && !get_str(c, v, "path", &op->path, true))
		return false;
	switch (op->kind) {
	case OP_READ:
	case OP_WRITE:
		return parse_io(c, v, op);
	case OP_MMAP_WRITE:
	case OP_MMAP_READ:
		return parse_mapped(c, v, op, true);
	case OP_MSYNC:
		if (!get_enum(c, v, "mode", msyncs, &m, false, 0))
			return false;
		op->msync_mode = (enum msync_mode)m;
		return parse_mapped(c, v, op, false);
	case OP_FALLOCATE:
		return get_int(c, v, "mode", &op->mode, true, 0, 0, INT32_MAX) &&
		       get_int(c, v, "offset", &op->offset, true, 0, 0, MAX_OFF) &&
		       get_int(c, v, "length", &op->length, true, 0, 0, MAX_OFF);
	case OP_TRUNCATE:
		return get_int(c, v, "size", &op->size, true, 0, 0, MAX_OFF);
	case OP_FSYNC:
		return get_bool(c, v, "dataOnly", &op->data_only, false, false);
	case OP_SYNC_FILE_RANGE:
		return get_int(c, v, "offset", &op->offset, true, 0, 0, MAX_OFF) &&
		       get_int(c, v, "length", &op->length, true, 0, 0, MAX_OFF) &&
		       get_int(c, v, "flags", &op->flags, false, 7, 0, UINT32_MAX);
	case OP_DISCARD:
		if (!get_enum(c, v, "mode", discards, &m, false, 0))
			return false;
		op->discard_mode = (enum discard_mode)m;
		return get_int(c, v, "offset", &op->offset, true, 0, 0, MAX_OFF) &&
		       get_int(c, v, "length", &op->length, true, 0, 0, MAX_OFF);
	case OP_LOOP_SET_DIRECT_IO:
		return get_bool(c, v, "on", &op->on, true, false);
	case OP_LOOP_SET_BLOCK_SIZE:
		return get_int(c, v, "size", &op->size, true, 0, 0, 1 << 20);
	case OP_CORRUPT:
		return get_int(c, v, "offset", &op->offset, true, 0, 0, MAX_OFF) &&
		       get_int(c, v, "length", &op->length, true, 0, 1, PLAN_MAX_IO);
	case OP_EXEC:
		return parse_exec(c, v, op);
	case OP_BARRIER:
		return get_str(c, v, "name", &op->barrier, true);
	case OP_SLEEP:
		return get_int(c, v, "ms", &op->ms, true, 0, 0, 3600 * 1000);
	case OP_FLUSH:
	case OP_DROP_CACHES:
		return true;
	}
	return bad(c, "unhandled op kind");
}

static bool parse_ranges(struct pc *c, const struct jval *v, struct final_read *f)
{
	if (v->t != J_ARR)
		return bad(c, "'ranges' must be an array");
	f->has_ranges = true;
	f->nranges = v->n;
	f->ranges = calloc(v->n ? v->n : 1, sizeof *f->ranges);
	if (!f->ranges)
		return bad(c, "out of memory");
	for (size_t k = 0; k < v->n; k++) {
		const struct jval *r = &v->items[k];
		if (r->t != J_ARR || r->n != 2 || r->items[0].t != J_NUM || !r->items[0].is_int || r->items[1].t != J_NUM ||
		    !r->items[1].is_int)
			return bad(c, "each range must be [start, end] integers");
		int64_t s = r->items[0].i, e = r->items[1].i;
		if (s < 0 || e < s || e > MAX_OFF)
			return bad(c, "range [%lld, %lld] is not 0 <= start <= end", (long long)s, (long long)e);
		f->ranges[k][0] = s;
		f->ranges[k][1] = e;
	}
	return true;
}

static bool parse_kind_block(struct pc *c, const struct jval *v, bool *block)
{
	static const char *const kinds[] = { "block", "file", NULL };
	int k;
	if (!get_enum(c, v, "kind", kinds, &k, true, 0))
		return false;
	*block = k == 0;
	return true;
}

/* ------------------------------------------------------------ templates */

/* Whether name[0, n) is among the captures of steps[0, upto). */
static bool captured_before(const struct plan *p, size_t upto, const char *name, size_t n)
{
	for (size_t k = 0; k < upto; k++) {
		const char *cap = p->steps[k].capture;
		if (cap && strlen(cap) == n && memcmp(cap, name, n) == 0)
			return true;
	}
	return false;
}

/* Every ${name} in t must be captured by a step before `upto`. */
static bool check_template(struct pc *c, const struct plan *p, size_t upto, const char *t)
{
	if (!t)
		return true;
	for (const char *q = strstr(t, "${"); q; q = strstr(q, "${")) {
		const char *e = strchr(q + 2, '}');
		if (!e)
			return bad(c, "unterminated ${ in '%s'", t);
		if (!captured_before(p, upto, q + 2, (size_t)(e - q - 2)))
			return bad(c, "'%.*s' in '%s' is not captured by an earlier set-up step", (int)(e - q + 1), q, t);
		q = e + 1;
	}
	return true;
}

static bool check_argv(struct pc *c, const struct plan *p, size_t upto, const struct argv_t *a)
{
	for (size_t k = 0; k < a->n; k++)
		if (!check_template(c, p, upto, a->v[k]))
			return false;
	return true;
}

static bool check_templates(struct pc *c, const struct plan *p)
{
	for (size_t k = 0; k < p->nsteps; k++) {
		const struct step *s = &p->steps[k];
		at(c, "setup[%zu]", k);
		/* A step's undo may name what the step itself captured (losetup -d ${l0}). */
		if (!check_argv(c, p, k, &s->argv) || !check_template(c, p, k, s->stdin_data) || !check_argv(c, p, k + 1, &s->undo))
			return false;
	}
	size_t all = p->nsteps;
	for (size_t t = 0; t < p->nthreads; t++)
		for (size_t k = 0; k < p->threads[t].n; k++) {
			const struct op *op = &p->threads[t].v[k];
			at(c, "threads[%zu][%zu]", t, k);
			if (!check_template(c, p, all, op->path) || !check_template(c, p, all, op->buf.path) ||
			    !check_template(c, p, all, op->close_prefix))
				return false;
			for (size_t a = 0; a < op->nargvs; a++)
				if (!check_argv(c, p, all, &op->argvs[a]))
					return false;
		}
	for (size_t k = 0; k < p->nprobes; k++) {
		at(c, "geometry[%zu]", k);
		if (!check_template(c, p, all, p->probes[k].path))
			return false;
	}
	for (size_t k = 0; k < p->nfinals; k++) {
		at(c, "final[%zu]", k);
		if (!check_template(c, p, all, p->finals[k].path))
			return false;
	}
	for (size_t k = 0; k < p->nchecks; k++) {
		at(c, "checks[%zu]", k);
		if (!check_argv(c, p, all, &p->checks[k].argv))
			return false;
	}
	return true;
}

/* Barriers are global: a thread that skipped one would leave the others waiting forever. */
static bool check_barriers(struct pc *c, const struct plan *p)
{
	if (p->nthreads == 0)
		return true;
	const struct op_list *first = &p->threads[0];
	for (size_t t = 1; t < p->nthreads; t++) {
		const struct op_list *l = &p->threads[t];
		size_t i = 0, j = 0;
		for (;;) {
			while (i < first->n && first->v[i].kind != OP_BARRIER)
				i++;
			while (j < l->n && l->v[j].kind != OP_BARRIER)
				j++;
			if (i == first->n && j == l->n)
				break;
			at(c, "threads[%zu]", t);
			if (i == first->n || j == l->n || strcmp(first->v[i].barrier, l->v[j].barrier) != 0)
				return bad(c, "barriers are global: every thread must pass the same barriers in the same order as thread 0");
			i++;
			j++;
		}
	}
	return true;
}

/* ------------------------------------------------------------ top level */

static bool parse_threads(struct pc *c, const struct jval *a, struct plan *p)
{
	p->nthreads = a->n;
	p->threads = calloc(a->n ? a->n : 1, sizeof *p->threads);
	if (!p->threads)
		return bad(c, "out of memory");
	for (size_t t = 0; t < a->n; t++) {
		const struct jval *ops = &a->items[t];
		at(c, "threads[%zu]", t);
		if (ops->t != J_ARR)
			return bad(c, "expected an array of ops");
		p->threads[t].n = ops->n;
		p->threads[t].v = calloc(ops->n ? ops->n : 1, sizeof *p->threads[t].v);
		if (!p->threads[t].v)
			return bad(c, "out of memory");
		for (size_t k = 0; k < ops->n; k++) {
			at(c, "threads[%zu][%zu]", t, k);
			if (!parse_op(c, &ops->items[k], &p->threads[t].v[k]))
				return false;
		}
	}
	return true;
}

static bool parse_sections(struct pc *c, const struct jval *doc, struct plan *p)
{
	bool ok = true;
	const struct jval *a;

	if (!(a = get_arr(c, doc, "setup", &ok)))
		return false;
	p->nsteps = a->n;
	p->steps = calloc(a->n ? a->n : 1, sizeof *p->steps);
	if (!p->steps)
		return bad(c, "out of memory");
	for (size_t k = 0; k < a->n; k++) {
		at(c, "setup[%zu]", k);
		if (!parse_step(c, &a->items[k], &p->steps[k]))
			return false;
	}

	at(c, "plan");
	if (!(a = get_arr(c, doc, "geometry", &ok)))
		return false;
	p->nprobes = a->n;
	p->probes = calloc(a->n ? a->n : 1, sizeof *p->probes);
	if (!p->probes)
		return bad(c, "out of memory");
	for (size_t k = 0; k < a->n; k++) {
		at(c, "geometry[%zu]", k);
		struct probe *g = &p->probes[k];
		if (!want_obj(c, &a->items[k]) || !get_str(c, &a->items[k], "id", &g->id, true) ||
		    !get_str(c, &a->items[k], "path", &g->path, true) || !parse_kind_block(c, &a->items[k], &g->block))
			return false;
	}

	at(c, "plan");
	if (!(a = get_arr(c, doc, "threads", &ok)) || !parse_threads(c, a, p))
		return false;

	at(c, "plan");
	if (!(a = get_arr(c, doc, "final", &ok)))
		return false;
	p->nfinals = a->n;
	p->finals = calloc(a->n ? a->n : 1, sizeof *p->finals);
	if (!p->finals)
		return bad(c, "out of memory");
	for (size_t k = 0; k < a->n; k++) {
		at(c, "final[%zu]", k);
		struct final_read *f = &p->finals[k];
		const struct jval *v = &a->items[k];
		if (!want_obj(c, v) || !get_str(c, v, "id", &f->id, true) || !get_str(c, v, "path", &f->path, true) ||
		    !parse_kind_block(c, v, &f->block))
			return false;
		const struct jval *r = json_get(v, "ranges");
		if (r && !parse_ranges(c, r, f))
			return false;
	}

	at(c, "plan");
	if (!(a = get_arr(c, doc, "candidates", &ok)))
		return false;
	p->ncands = a->n;
	p->cands = calloc(a->n ? a->n : 1, sizeof *p->cands);
	if (!p->cands)
		return bad(c, "out of memory");
	for (size_t k = 0; k < a->n; k++) {
		at(c, "candidates[%zu]", k);
		if (!want_obj(c, &a->items[k]) || !get_int(c, &a->items[k], "op", &p->cands[k][0], true, 0, 0, INT32_MAX) ||
		    !get_int(c, &a->items[k], "delta", &p->cands[k][1], true, 0, -MAX_OFF, MAX_OFF))
			return false;
	}

	at(c, "plan");
	if (!(a = get_arr(c, doc, "checks", &ok)))
		return false;
	p->nchecks = a->n;
	p->checks = calloc(a->n ? a->n : 1, sizeof *p->checks);
	if (!p->checks)
		return bad(c, "out of memory");
	for (size_t k = 0; k < a->n; k++) {
		at(c, "checks[%zu]", k);
		struct check *ch = &p->checks[k];
		int64_t t;
		if (!want_obj(c, &a->items[k]) || !get_str(c, &a->items[k], "name", &ch->name, true) ||
		    !get_argv(c, &a->items[k], "argv", &ch->argv, true) ||
		    !get_int(c, &a->items[k], "timeoutMs", &t, false, 60000, 1, 24LL * 3600 * 1000))
			return false;
		ch->timeout_ms = (int)t;
	}
	return true;
}

bool plan_parse(const struct jval *doc, struct plan *p, char *err, size_t errlen)
{
	struct pc c = { .err = err, .errlen = errlen };
	int64_t version, seed, timeout;
	memset(p, 0, sizeof *p);
	at(&c, "plan");
	if (!want_obj(&c, doc) || !get_int(&c, doc, "version", &version, true, 0, 1, 1) ||
	    !get_int(&c, doc, "seed", &seed, true, 0, 0, UINT32_MAX) ||
	    !get_int(&c, doc, "opTimeoutMs", &timeout, false, 60000, 1, 24LL * 3600 * 1000) ||
	    !get_bool(&c, doc, "keepStack", &p->keep_stack, false, false))
		return false;
	p->seed = (uint32_t)seed;
	p->op_timeout_ms = (int)timeout;
	return parse_sections(&c, doc, p) && check_templates(&c, p) && check_barriers(&c, p);
}
