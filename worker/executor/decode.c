/*
 * The read decoder; see decode.h. Same rules as decodeBytes in
 * model/pattern.ts: keep the current run while bytes match; at a run start
 * pick the source with the longest match over the next 8 bytes (zero first,
 * then the candidates in plan order; ties keep the earlier one); a best match
 * shorter than min(4, bytes remaining) is 'unknown'.
 *
 * The one difference, for speed: after an 'unknown' byte the TS reference
 * tries every candidate again at the very next byte, which costs
 * (number of candidates) pattern lookups per byte of noise (filesystem
 * metadata, corrupted ranges, old device content). Here, once a byte is
 * unknown, candidates are only tried again at addresses that are multiples
 * of 16. So a run of pattern that starts right after noise, at an address
 * that is not a multiple of 16, is reported as unknown up to the next
 * multiple of 16. Writes and device blocks start at multiples of 512 in
 * practice, so this costs nothing there. Runs that follow a matching run
 * (op to op, op to zero) are found at the exact byte, as in TS.
 */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pattern.h"

#define RETRY_ALIGN 16

bool cand_set_init(struct cand_set *cs, uint32_t seed, const int64_t (*pairs)[2], size_t n)
{
	cs->seed = seed;
	cs->n = n;
	cs->v = calloc(n ? n : 1, sizeof *cs->v);
	if (!cs->v)
		return false;
	for (size_t k = 0; k < n; k++) {
		cs->v[k].op = pairs[k][0];
		cs->v[k].delta = pairs[k][1];
		cs->v[k].key = pattern_key(seed, (uint32_t)pairs[k][0]);
	}
	return true;
}

void cand_set_free(struct cand_set *cs)
{
	free(cs->v);
	cs->v = NULL;
	cs->n = 0;
}

void runs_free(struct runs *r)
{
	free(r->v);
	memset(r, 0, sizeof *r);
}

void decoder_init(struct decoder *d, const struct cand_set *cs, struct runs *out, int64_t origin)
{
	d->cs = cs;
	d->out = out;
	d->origin = origin;
	d->cur = CUR_NONE;
}

static bool same_source(const struct run *r, enum src_kind kind, int64_t op, int64_t delta)
{
	if (r->kind != kind)
		return false;
	return kind != SRC_OP || (r->op == op && r->delta == delta);
}

/* Append [addr, addr+len) from `kind` to the output, merging with the last run when contiguous. */
static void push(struct decoder *d, enum src_kind kind, int64_t op, int64_t delta, int64_t addr, int64_t len, const uint8_t *bytes)
{
	struct runs *r = d->out;
	int64_t off = addr - d->origin;
	struct run *last = r->n ? &r->v[r->n - 1] : NULL;
	if (!last || last->offset + last->length != off || !same_source(last, kind, op, delta)) {
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 16;
			struct run *v = realloc(r->v, cap * sizeof *v);
			if (!v) {
				r->oom = true;
				return;
			}
			r->v = v;
			r->cap = cap;
		}
		last = &r->v[r->n++];
		memset(last, 0, sizeof *last);
		last->offset = off;
		last->kind = kind;
		last->op = op;
		last->delta = delta;
	}
	last->length += len;
	if (kind == SRC_UNKNOWN && bytes && last->sample_len < SAMPLE_MAX) {
		int64_t take = SAMPLE_MAX - last->sample_len;
		if (take > len)
			take = len;
		memcpy(last->sample + last->sample_len, bytes, (size_t)take);
		last->sample_len += (int)take;
	}
}

static void push_cur(struct decoder *d, long cur, int64_t addr, int64_t len)
{
	if (cur == CUR_ZERO)
		push(d, SRC_ZERO, 0, 0, addr, len, NULL);
	else {
		const struct candidate *c = &d->cs->v[cur - 1];
		push(d, SRC_OP, c->op, c->delta, addr, len, NULL);
	}
}

/* Leading bytes of b[0, n) (at address addr) that source `cur` explains. */
static size_t match_len(const struct decoder *d, long cur, const uint8_t *b, size_t n, int64_t addr)
{
	if (cur == CUR_ZERO) {
		size_t k = 0;
		while (k < n && b[k] == 0)
			k++;
		return k;
	}
	const struct candidate *c = &d->cs->v[cur - 1];
	return pattern_match(b, n, c->key, addr + c->delta);
}

/* The source to start a run with at b[0]: longest match over `look` bytes, or CUR_UNKNOWN. */
static long pick(const struct decoder *d, const uint8_t *b, size_t look, int64_t addr, int64_t remaining)
{
	long best = CUR_UNKNOWN;
	size_t best_len = 0;
	for (long c = CUR_ZERO; c <= (long)d->cs->n; c++) {
		size_t l = match_len(d, c, b, look, addr);
		if (l > best_len) {
			best = c;
			best_len = l;
			if (best_len == look)
				break; /* nothing later can be strictly longer */
		}
	}
	int64_t need = remaining < 4 ? remaining : 4;
	return (int64_t)best_len < need ? CUR_UNKNOWN : best;
}

void decode_feed(struct decoder *d, const uint8_t *bytes, size_t n, size_t avail, int64_t addr, int64_t end_addr)
{
	size_t i = 0;
	while (i < n) {
		int64_t a = addr + (int64_t)i;
		if (d->cur >= CUR_ZERO) {
			size_t k = match_len(d, d->cur, bytes + i, n - i, a);
			if (k) {
				push_cur(d, d->cur, a, (int64_t)k);
				i += k;
				continue; /* either done, or the next pass finds the mismatch (k == 0) and picks */
			}
		} else if (d->cur == CUR_UNKNOWN && (a & (RETRY_ALIGN - 1)) != 0) {
			/* Noise continues: no retry until the next multiple of 16 (see the top of this file). */
			size_t to = i + (size_t)(RETRY_ALIGN - (a & (RETRY_ALIGN - 1)));
			if (to > n)
				to = n;
			push(d, SRC_UNKNOWN, 0, 0, a, (int64_t)(to - i), bytes + i);
			i = to;
			continue;
		}
		size_t look = avail - i < 8 ? avail - i : 8;
		d->cur = pick(d, bytes + i, look, a, end_addr - a);
		if (d->cur == CUR_UNKNOWN) {
			push(d, SRC_UNKNOWN, 0, 0, a, 1, bytes + i);
			i++;
		}
		/* Otherwise the chosen source matches at least bytes[i]: the next pass extends it. */
	}
}

void decode_error(struct decoder *d, int64_t addr, int64_t len)
{
	push(d, SRC_ERROR, 0, 0, addr, len, NULL);
	d->cur = CUR_NONE;
}

void runs_to_json(struct jw *w, const struct runs *r)
{
	static const char *const names[] = { [SRC_ZERO] = "zero", [SRC_UNKNOWN] = "unknown", [SRC_ERROR] = "error" };
	jw_arr_begin(w);
	for (size_t k = 0; k < r->n; k++) {
		const struct run *x = &r->v[k];
		jw_obj_begin(w);
		jw_kint(w, "offset", x->offset);
		jw_kint(w, "length", x->length);
		jw_key(w, "src");
		if (x->kind == SRC_OP) {
			jw_obj_begin(w);
			jw_kint(w, "op", x->op);
			jw_kint(w, "delta", x->delta);
			jw_obj_end(w);
		} else
			jw_str(w, names[x->kind]);
		if (x->kind == SRC_UNKNOWN && x->sample_len) {
			jw_key(w, "sample");
			jw_hex(w, x->sample, (size_t)x->sample_len);
		}
		jw_obj_end(w);
	}
	jw_arr_end(w);
}
