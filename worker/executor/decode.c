/*
 * The read decoder; see decode.h. Rules, as in decodeBytes (model/pattern.ts):
 * keep the current run while bytes match; when it breaks (or at the start),
 * pick the source with the longest match over the next 8 bytes (zero first,
 * then the candidates in plan order; ties keep the earlier one); a byte that
 * matches nothing is 'unknown'.
 *
 * The one difference is inside garbage, i.e. after an 'unknown' byte:
 * - candidates are tried again only at addresses that are multiples of 16,
 *   and a match there must be at least min(4, bytes remaining) long; a run
 *   accepted this way is then extended backwards over the unknown bytes it
 *   matches, so a run that starts right after garbage is still found from
 *   its first byte;
 * - so 1-3 byte chance matches inside garbage stay 'unknown'. decodeBytes
 *   attributes each of them to a candidate: with the usual ~10 deltas per
 *   writer and a few dozen writers, about half of all garbage bytes match
 *   some candidate by chance, which turns a MiB of filesystem metadata or a
 *   corrupted range into ~10^6 one-byte runs (event lines of hundreds of MB)
 *   and costs (number of candidates) pattern lookups per byte.
 * What is lost: a write shorter than ~20 bytes that directly follows garbage
 * and is directly followed by more garbage or another op's data may be
 * reported as 'unknown'. Runs that follow a known run (op to op, op to zero,
 * slivers of 1-3 bytes between writes) are found at the exact byte, as in TS.
 *
 * Candidates with a home (see decode.h; the executor gives every candidate
 * whose op is a write of the plan the range that op wrote, shifted by -delta)
 * are only tried at addresses inside it: elsewhere the op's pattern was
 * never written, so a match there is chance. This keeps a run start at a
 * few dozen lookups when a case has thousands of (op, delta) candidates; the
 * only bytes it changes are chance matches, which become 'unknown'.
 */
#include "decode.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pattern.h"

bool cand_set_init(struct cand_set *cs, uint32_t seed, const int64_t (*pairs)[2], size_t n)
{
	memset(cs, 0, sizeof *cs);
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

void cand_set_home(struct cand_set *cs, size_t k, int64_t start, int64_t end)
{
	cs->v[k].homed = true;
	cs->v[k].home_start = start;
	cs->v[k].home_end = end;
}

#define BUCKET_SHIFT 16
/* A home wider than this many buckets (16 MiB) is cheaper to try everywhere. */
#define MAX_BUCKETS_PER_HOME 256

struct bucket {
	int64_t key;
	bool used;
	uint32_t *idx; /* candidate indexes, ascending */
	uint32_t n, cap;
};

static struct bucket *bucket_slot(const struct cand_set *cs, int64_t key)
{
	size_t mask = cs->nbuckets - 1;
	size_t h = (size_t)((uint64_t)key * 0x9e3779b97f4a7c15ULL >> 20) & mask;
	while (cs->buckets[h].used && cs->buckets[h].key != key)
		h = (h + 1) & mask;
	return &cs->buckets[h];
}

static bool push_idx(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 4;
		uint32_t *p = realloc(*v, c * sizeof *p);
		if (!p)
			return false;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return true;
}

static bool is_wide(const struct candidate *c)
{
	return !c->homed || c->home_end <= c->home_start ||
	       ((c->home_end - 1) >> BUCKET_SHIFT) - (c->home_start >> BUCKET_SHIFT) >= MAX_BUCKETS_PER_HOME;
}

bool cand_set_index(struct cand_set *cs)
{
	size_t spans = 0;
	for (size_t k = 0; k < cs->n; k++)
		if (!is_wide(&cs->v[k]))
			spans += (size_t)(((cs->v[k].home_end - 1) >> BUCKET_SHIFT) - (cs->v[k].home_start >> BUCKET_SHIFT) + 1);
	cs->nbuckets = 16;
	while (cs->nbuckets < 2 * spans)
		cs->nbuckets *= 2;
	cs->buckets = calloc(cs->nbuckets, sizeof *cs->buckets);
	cs->wide = calloc(cs->n ? cs->n : 1, sizeof *cs->wide);
	if (!cs->buckets || !cs->wide)
		return false;
	uint32_t nwide = 0;
	for (size_t k = 0; k < cs->n; k++) {
		const struct candidate *c = &cs->v[k];
		if (is_wide(c)) {
			cs->wide[nwide++] = (uint32_t)k;
			continue;
		}
		for (int64_t b = c->home_start >> BUCKET_SHIFT; b <= (c->home_end - 1) >> BUCKET_SHIFT; b++) {
			struct bucket *s = bucket_slot(cs, b);
			s->used = true;
			s->key = b;
			if (!push_idx(&s->idx, &s->n, &s->cap, (uint32_t)k))
				return false;
		}
	}
	cs->nwide = nwide;
	cs->indexed = true;
	return true;
}

void cand_set_free(struct cand_set *cs)
{
	for (size_t k = 0; cs->buckets && k < cs->nbuckets; k++)
		free(cs->buckets[k].idx);
	free(cs->buckets);
	free(cs->wide);
	free(cs->v);
	memset(cs, 0, sizeof *cs);
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
	d->tail_len = 0;
	d->tail_end = INT64_MIN;
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
		/* Eight bytes a step: most of a device read back is zeroes, and under TCG every guest instruction counts. */
		size_t k = 0;
		while (k < n && ((uintptr_t)(b + k) & 7))
			if (b[k])
				return k;
			else
				k++;
		for (; n - k >= 32; k += 32) {
			uint64_t w[4];
			memcpy(w, b + k, sizeof w);
			if (w[0] | w[1] | w[2] | w[3])
				break;
		}
		while (k < n && b[k] == 0)
			k++;
		return k;
	}
	const struct candidate *c = &d->cs->v[cur - 1];
	return pattern_match(b, n, c->key, addr + c->delta);
}

struct best {
	long src;
	size_t len;
};

/* Consider source c (CUR_ZERO or 1 + candidate index) for a run at b[0]. */
static inline void consider(const struct decoder *d, long c, const uint8_t *b, size_t look, int64_t addr, struct best *best)
{
	size_t l = match_len(d, c, b, look, addr);
	if (l > best->len) {
		best->src = c;
		best->len = l;
	}
}

/* The sources to try at addr, in plan order: with an index, the wide ones merged with addr's bucket. */
static void consider_all(const struct decoder *d, const uint8_t *b, size_t look, int64_t addr, struct best *best)
{
	const struct cand_set *cs = d->cs;
	consider(d, CUR_ZERO, b, look, addr, best);
	if (!cs->indexed) {
		for (size_t k = 0; k < cs->n && best->len < look; k++)
			consider(d, (long)k + 1, b, look, addr, best);
		return;
	}
	const struct bucket *bk = bucket_slot(cs, addr >> BUCKET_SHIFT);
	uint32_t nb = bk->used ? bk->n : 0;
	size_t i = 0, j = 0;
	/* Stop once a match fills the look-ahead: nothing later in plan order can be strictly longer. */
	while ((i < cs->nwide || j < nb) && best->len < look) {
		uint32_t k;
		if (j == nb || (i < cs->nwide && cs->wide[i] < bk->idx[j]))
			k = cs->wide[i++];
		else {
			k = bk->idx[j++];
			const struct candidate *c = &cs->v[k];
			if (addr < c->home_start || addr >= c->home_end)
				continue;
		}
		consider(d, (long)k + 1, b, look, addr, best);
	}
}

/* The source with the longest match at b[0] over `look` bytes, if at least min_len long; else CUR_UNKNOWN. */
static long pick(const struct decoder *d, const uint8_t *b, size_t look, int64_t addr, size_t min_len)
{
	struct best best = { CUR_UNKNOWN, 0 };
	consider_all(d, b, look, addr, &best);
	return best.len >= min_len && best.len > 0 ? best.src : CUR_UNKNOWN;
}

static bool byte_matches(const struct decoder *d, long c, uint8_t b, int64_t addr)
{
	if (c == CUR_ZERO)
		return b == 0;
	const struct candidate *x = &d->cs->v[c - 1];
	return b == pattern_byte_k(x->key, addr + x->delta);
}

/* Byte at address addr + i (i may be negative: then from the previous feed's tail), or -1. */
static int byte_at(const struct decoder *d, const uint8_t *bytes, ptrdiff_t i, int64_t addr)
{
	if (i >= 0)
		return bytes[i];
	int64_t back = addr - d->tail_end - i; /* how far before tail_end: 1 = its last byte */
	if (d->tail_end != addr || back > d->tail_len)
		return -1;
	return d->tail[d->tail_len - back];
}

/*
 * A run of source c accepted at bytes[i] inside garbage: take back the unknown
 * bytes just before it that c explains (at most RETRY_ALIGN - 1: a run that
 * started earlier would have been found at the previous retry address).
 */
static void extend_back(struct decoder *d, long c, const uint8_t *bytes, size_t i, int64_t addr)
{
	struct runs *r = d->out;
	int64_t a = addr + (int64_t)i;
	struct run *u = r->n ? &r->v[r->n - 1] : NULL;
	if (!u || u->kind != SRC_UNKNOWN || u->offset + u->length != a - d->origin)
		return;
	int64_t k = 0;
	while (k < RETRY_ALIGN - 1 && k < u->length - 1) {
		int b = byte_at(d, bytes, (ptrdiff_t)i - k - 1, addr);
		if (b < 0 || !byte_matches(d, c, (uint8_t)b, a - k - 1))
			break;
		k++;
	}
	if (!k)
		return;
	u->length -= k;
	if (u->sample_len > u->length)
		u->sample_len = (int)u->length;
	push_cur(d, c, a - k, k);
}

static void remember_tail(struct decoder *d, const uint8_t *bytes, size_t n, int64_t addr)
{
	size_t keep = n < RETRY_ALIGN ? n : RETRY_ALIGN;
	if (d->tail_end == addr && keep < RETRY_ALIGN) {
		/* A short feed: keep the older bytes too. */
		size_t old = (size_t)d->tail_len + keep > RETRY_ALIGN ? RETRY_ALIGN - keep : (size_t)d->tail_len;
		memmove(d->tail, d->tail + d->tail_len - old, old);
		memcpy(d->tail + old, bytes + n - keep, keep);
		d->tail_len = (int)(old + keep);
	} else {
		memcpy(d->tail, bytes + n - keep, keep);
		d->tail_len = (int)keep;
	}
	d->tail_end = addr + (int64_t)n;
}

void decode_feed(struct decoder *d, const uint8_t *bytes, size_t n, size_t avail, int64_t addr, int64_t end_addr)
{
	size_t i = 0;
	while (i < n) {
		int64_t a = addr + (int64_t)i;
		size_t look = avail - i < 8 ? avail - i : 8;
		if (d->cur >= CUR_ZERO) {
			size_t k = match_len(d, d->cur, bytes + i, n - i, a);
			if (k) {
				push_cur(d, d->cur, a, (int64_t)k);
				i += k;
				continue; /* either done, or the next pass finds the mismatch (k == 0) and picks */
			}
		} else if (d->cur == CUR_UNKNOWN) {
			/* Inside garbage: only at multiples of 16, only runs of 4 bytes or more (see the top of this file). */
			if ((a & (RETRY_ALIGN - 1)) == 0) {
				int64_t remaining = end_addr - a;
				long c = pick(d, bytes + i, look, a, remaining < 4 ? (size_t)remaining : 4);
				if (c != CUR_UNKNOWN) {
					extend_back(d, c, bytes, i, addr);
					d->cur = c;
					continue;
				}
			}
			size_t to = i + (size_t)(RETRY_ALIGN - (a & (RETRY_ALIGN - 1)));
			if (to > n)
				to = n;
			push(d, SRC_UNKNOWN, 0, 0, a, (int64_t)(to - i), bytes + i);
			i = to;
			continue;
		}
		/* A run broke, or nothing started yet: any match counts, as in TS. */
		d->cur = pick(d, bytes + i, look, a, 1);
		if (d->cur == CUR_UNKNOWN) {
			push(d, SRC_UNKNOWN, 0, 0, a, 1, bytes + i);
			i++;
		}
	}
	if (n)
		remember_tail(d, bytes, n, addr);
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
