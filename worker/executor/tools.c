/*
 * `blockfarm-exec --pattern` and `blockfarm-exec --decode`: one JSON query
 * per stdin line, one JSON answer per stdout line, so tests can pin the C
 * pattern and decoder against model/pattern.ts in a single process.
 *
 *   --pattern  {"seed":S,"op":O,"addr":A,"len":N}               -> {"hex":"..."}
 *   --decode   {"seed":S,"addr":A,"candidates":[{"op":O,"delta":D,"home"?:[S,E]}],"hex":"...","chunk"?:N}
 *                                                               -> {"runs":[DecodedRun...]}
 *
 * A candidate's optional home is where its bytes can be (decode.h); with
 * homes, the candidates are indexed as in a plan run.
 *
 * Decoded run offsets are relative to the decoded bytes, as decodeBytes gives them.
 */
#define _GNU_SOURCE
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "helpers.h"
#include "json.h"
#include "pattern.h"
#include "util.h"

static int64_t num(const struct jval *o, const char *key)
{
	const struct jval *v = json_get(o, key);
	return v && v->t == J_NUM && v->is_int ? v->i : 0;
}

static void answer_error(struct jw *w, const char *msg)
{
	jw_obj_begin(w);
	jw_kstr(w, "error", msg);
	jw_obj_end(w);
}

static void pattern_query(const struct jval *q, struct jw *w)
{
	int64_t len = num(q, "len");
	if (len < 0 || len > (1 << 24))
		return answer_error(w, "bad len");
	uint8_t *b = malloc((size_t)len + 1);
	if (!b)
		return answer_error(w, "out of memory");
	pattern_fill(b, (size_t)len, (uint32_t)num(q, "seed"), (uint32_t)num(q, "op"), num(q, "addr"));
	jw_obj_begin(w);
	jw_key(w, "hex");
	jw_hex(w, b, (size_t)len);
	jw_obj_end(w);
	free(b);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void decode_query(const struct jval *q, struct jw *w)
{
	const struct jval *hex = json_get(q, "hex");
	const struct jval *cands = json_get(q, "candidates");
	if (!hex || hex->t != J_STR || hex->len % 2 || !cands || cands->t != J_ARR)
		return answer_error(w, "need hex and candidates");
	size_t n = hex->len / 2;
	uint8_t *b = malloc(n + 1);
	int64_t(*pairs)[2] = calloc(cands->n + 1, sizeof *pairs);
	if (!b || !pairs) {
		free(b);
		free(pairs);
		return answer_error(w, "out of memory");
	}
	for (size_t k = 0; k < n; k++)
		b[k] = (uint8_t)(hexval(hex->s[2 * k]) << 4 | hexval(hex->s[2 * k + 1]));
	for (size_t k = 0; k < cands->n; k++) {
		pairs[k][0] = num(&cands->items[k], "op");
		pairs[k][1] = num(&cands->items[k], "delta");
	}
	struct cand_set cs;
	struct runs runs = { 0 };
	int64_t addr = num(q, "addr");
	bool ok = cand_set_init(&cs, (uint32_t)num(q, "seed"), (const int64_t(*)[2])pairs, cands->n);
	bool homes = false;
	for (size_t k = 0; ok && k < cands->n; k++) {
		const struct jval *h = json_get(&cands->items[k], "home");
		if (h && h->t == J_ARR && h->n == 2) {
			cand_set_home(&cs, k, h->items[0].i, h->items[1].i);
			homes = true;
		}
	}
	if (ok && homes)
		ok = cand_set_index(&cs);
	if (ok) {
		struct decoder d;
		decoder_init(&d, &cs, &runs, addr);
		/* Optional "chunk": feed in pieces of this size, as final reads do, to test continuity. */
		size_t chunk = num(q, "chunk") > 0 ? (size_t)num(q, "chunk") : (n ? n : 1);
		for (size_t at = 0; at < n; at += chunk) {
			size_t k = n - at < chunk ? n - at : chunk;
			size_t avail = n - at < chunk + 8 ? n - at : chunk + 8;
			decode_feed(&d, b + at, k, avail, addr + (int64_t)at, addr + (int64_t)n);
		}
		cand_set_free(&cs);
	}
	jw_obj_begin(w);
	jw_key(w, "runs");
	runs_to_json(w, &runs);
	jw_obj_end(w);
	runs_free(&runs);
	free(b);
	free(pairs);
}

int tool_main(int argc, char **argv)
{
	int h = helper_main(argc, argv);
	if (h >= 0)
		return h;
	void (*fn)(const struct jval *, struct jw *) = NULL;
	if (strcmp(argv[1], "--pattern") == 0)
		fn = pattern_query;
	else if (strcmp(argv[1], "--decode") == 0)
		fn = decode_query;
	if (!fn || argc != 2) {
		fprintf(stderr, "usage: blockfarm-exec < plan.json\n       blockfarm-exec --pattern|--decode < queries (one JSON per line)\n");
		return 2;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct jw w;
	jw_init(&w);
	while ((len = getline(&line, &cap, stdin)) > 0) {
		char err[200];
		struct jval *q = json_parse(line, (size_t)len, err, sizeof err);
		jw_reset(&w);
		if (q)
			fn(q, &w);
		else
			answer_error(&w, err);
		emit(&w);
		json_free(q);
	}
	free(line);
	jw_free(&w);
	return 0;
}
