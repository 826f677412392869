/* JSON reader and writer; see json.h. Written for this executor, RFC 8259. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ reader */

#define MAX_DEPTH 64

struct parser {
	const char *p, *start, *end;
	char *err;
	size_t errlen;
	bool failed;
};

static void fail(struct parser *ps, const char *fmt, ...)
{
	if (ps->failed)
		return;
	ps->failed = true;
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "%s at byte %zu", msg, (size_t)(ps->p - ps->start));
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	ps->p += n;
	return true;
}

/* A growable byte buffer for string contents. */
struct sbuf {
	char *b;
	size_t n, cap;
};

static bool sbuf_put(struct sbuf *s, const char *src, size_t n)
{
	if (s->n + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 32;
		while (cap < s->n + n + 1)
			cap *= 2;
		char *b = realloc(s->b, cap);
		if (!b)
			return false;
		s->b = b;
		s->cap = cap;
	}
	memcpy(s->b + s->n, src, n);
	s->n += n;
	s->b[s->n] = 0;
	return true;
}

static bool put_utf8(struct sbuf *s, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return sbuf_put(s, u, n);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool read_hex4(struct parser *ps, uint32_t *out)
{
	if (ps->end - ps->p < 4) {
		fail(ps, "truncated \\u escape");
		return false;
	}
	uint32_t v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval(ps->p[k]);
		if (h < 0) {
			fail(ps, "bad \\u escape");
			return false;
		}
		v = (v << 4) | (uint32_t)h;
	}
	ps->p += 4;
	*out = v;
	return true;
}

static bool parse_escape(struct parser *ps, struct sbuf *s)
{
	char c = *ps->p++;
	const char *simple = NULL;
	switch (c) {
	case '"': simple = "\""; break;
	case '\\': simple = "\\"; break;
	case '/': simple = "/"; break;
	case 'b': simple = "\b"; break;
	case 'f': simple = "\f"; break;
	case 'n': simple = "\n"; break;
	case 'r': simple = "\r"; break;
	case 't': simple = "\t"; break;
	case 'u': break;
	default:
		fail(ps, "bad escape '\\%c'", c);
		return false;
	}
	if (simple)
		return sbuf_put(s, simple, 1);
	uint32_t cp;
	if (!read_hex4(ps, &cp))
		return false;
	/* A high surrogate followed by a low one is one code point; a lone one becomes U+FFFD. */
	if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
		const char *save = ps->p;
		ps->p += 2;
		uint32_t lo;
		if (!read_hex4(ps, &lo))
			return false;
		if (lo >= 0xdc00 && lo < 0xe000)
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		else
			ps->p = save;
	}
	if (cp >= 0xd800 && cp < 0xe000)
		cp = 0xfffd;
	return put_utf8(s, cp);
}

static bool parse_string_raw(struct parser *ps, char **out, size_t *outlen)
{
	struct sbuf s = { 0 };
	ps->p++; /* opening quote */
	if (!sbuf_put(&s, "", 0))
		goto oom;
	while (ps->p < ps->end) {
		const char *q = ps->p;
		while (q < ps->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
			q++;
		if (!sbuf_put(&s, ps->p, (size_t)(q - ps->p)))
			goto oom;
		ps->p = q;
		if (q == ps->end)
			break;
		if (*q == '"') {
			ps->p++;
			*out = s.b;
			*outlen = s.n;
			return true;
		}
		if (*q == '\\') {
			ps->p++;
			if (ps->p == ps->end)
				break;
			if (!parse_escape(ps, &s)) {
				free(s.b);
				return false;
			}
			continue;
		}
		fail(ps, "control character in string");
		free(s.b);
		return false;
	}
	fail(ps, "unterminated string");
	free(s.b);
	return false;
oom:
	fail(ps, "out of memory");
	free(s.b);
	return false;
}

static bool parse_number(struct parser *ps, struct jval *v)
{
	const char *s = ps->p;
	const char *q = s;
	if (q < ps->end && *q == '-')
		q++;
	const char *digits = q;
	if (q < ps->end && *q == '0')
		q++;
	else if (q < ps->end && *q >= '1' && *q <= '9')
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	else {
		fail(ps, "bad number");
		return false;
	}
	size_t ndigits = (size_t)(q - digits);
	bool integral_literal = true;
	if (q < ps->end && *q == '.') {
		integral_literal = false;
		q++;
		if (q == ps->end || *q < '0' || *q > '9') {
			fail(ps, "bad number");
			return false;
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		integral_literal = false;
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q == ps->end || *q < '0' || *q > '9') {
			fail(ps, "bad number");
			return false;
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	char tmp[64];
	size_t n = (size_t)(q - s);
	if (n >= sizeof tmp) {
		fail(ps, "number too long");
		return false;
	}
	memcpy(tmp, s, n);
	tmp[n] = 0;
	v->t = J_NUM;
	v->num = strtod(tmp, NULL);
	if (integral_literal && ndigits <= 18) {
		/* Exact: offsets up to 2^53 must not pass through a double's rounding. */
		v->i = strtoll(tmp, NULL, 10);
		v->is_int = true;
	} else if (isfinite(v->num) && v->num == floor(v->num) && fabs(v->num) <= 9007199254740992.0) {
		v->i = (int64_t)v->num;
		v->is_int = true;
	}
	ps->p = q;
	return true;
}

static bool parse_value(struct parser *ps, struct jval *v, int depth);

static bool grow_items(struct parser *ps, struct jval *v, size_t *cap, bool with_keys)
{
	if (v->n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 4;
	struct jval *items = realloc(v->items, ncap * sizeof *items);
	if (!items) {
		fail(ps, "out of memory");
		return false;
	}
	v->items = items;
	if (with_keys) {
		char **keys = realloc(v->keys, ncap * sizeof *keys);
		if (!keys) {
			fail(ps, "out of memory");
			return false;
		}
		v->keys = keys;
	}
	*cap = ncap;
	return true;
}

static bool parse_array(struct parser *ps, struct jval *v, int depth)
{
	size_t cap = 0;
	v->t = J_ARR;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return true;
	}
	for (;;) {
		if (!grow_items(ps, v, &cap, false))
			return false;
		memset(&v->items[v->n], 0, sizeof v->items[0]);
		v->n++;
		if (!parse_value(ps, &v->items[v->n - 1], depth + 1))
			return false;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return true;
		}
		fail(ps, "expected ',' or ']'");
		return false;
	}
}

static bool parse_object(struct parser *ps, struct jval *v, int depth)
{
	size_t cap = 0;
	v->t = J_OBJ;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return true;
	}
	for (;;) {
		skip_ws(ps);
		if (ps->p == ps->end || *ps->p != '"') {
			fail(ps, "expected a key");
			return false;
		}
		if (!grow_items(ps, v, &cap, true))
			return false;
		size_t k = v->n;
		memset(&v->items[k], 0, sizeof v->items[0]);
		v->keys[k] = NULL;
		v->n++;
		size_t klen;
		if (!parse_string_raw(ps, &v->keys[k], &klen))
			return false;
		skip_ws(ps);
		if (ps->p == ps->end || *ps->p != ':') {
			fail(ps, "expected ':'");
			return false;
		}
		ps->p++;
		if (!parse_value(ps, &v->items[k], depth + 1))
			return false;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return true;
		}
		fail(ps, "expected ',' or '}'");
		return false;
	}
}

static bool parse_value(struct parser *ps, struct jval *v, int depth)
{
	if (depth > MAX_DEPTH) {
		fail(ps, "nested too deeply");
		return false;
	}
	skip_ws(ps);
	if (ps->p == ps->end) {
		fail(ps, "unexpected end of input");
		return false;
	}
	switch (*ps->p) {
	case '{':
		return parse_object(ps, v, depth);
	case '[':
		return parse_array(ps, v, depth);
	case '"':
		v->t = J_STR;
		return parse_string_raw(ps, &v->s, &v->len);
	case 't':
	case 'f':
	case 'n':
		if (literal(ps, "true")) {
			v->t = J_BOOL;
			v->b = true;
			return true;
		}
		if (literal(ps, "false")) {
			v->t = J_BOOL;
			return true;
		}
		if (literal(ps, "null")) {
			v->t = J_NULL;
			return true;
		}
		break;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps, v);
	}
	fail(ps, "unexpected character '%c'", *ps->p);
	return false;
}

static void free_children(struct jval *v)
{
	if (!v)
		return;
	free(v->s);
	for (size_t k = 0; k < v->n; k++) {
		free_children(&v->items[k]);
		if (v->keys)
			free(v->keys[k]);
	}
	free(v->items);
	free(v->keys);
}

void json_free(struct jval *v)
{
	free_children(v);
	free(v);
}

struct jval *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct parser ps = { .p = text, .start = text, .end = text + len, .err = err, .errlen = errlen };
	struct jval *v = calloc(1, sizeof *v);
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_value(&ps, v, 0)) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			fail(&ps, "trailing data");
	}
	if (ps.failed) {
		json_free(v);
		return NULL;
	}
	return v;
}

const struct jval *json_get(const struct jval *obj, const char *key)
{
	if (!obj || obj->t != J_OBJ)
		return NULL;
	for (size_t k = 0; k < obj->n; k++)
		if (strcmp(obj->keys[k], key) == 0)
			return &obj->items[k];
	return NULL;
}

/* ------------------------------------------------------------------ writer */

void jw_init(struct jw *w)
{
	memset(w, 0, sizeof *w);
	w->first[0] = true;
}

void jw_free(struct jw *w)
{
	free(w->buf);
	memset(w, 0, sizeof *w);
}

void jw_reset(struct jw *w)
{
	w->len = 0;
	w->depth = 0;
	w->first[0] = true;
	w->after_key = false;
	w->oom = false;
	if (w->buf)
		w->buf[0] = 0;
}

static void put(struct jw *w, const char *s, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n + 1)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->oom = true;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static void puts_(struct jw *w, const char *s)
{
	put(w, s, strlen(s));
}

/* Before a value or key: a comma unless it is the first in its container or follows a key. */
static void sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = false;
}

static void open_(struct jw *w, const char *c)
{
	sep(w);
	put(w, c, 1);
	if (w->depth + 1 < JW_DEPTH)
		w->depth++;
	w->first[w->depth] = true;
}

static void close_(struct jw *w, const char *c)
{
	put(w, c, 1);
	if (w->depth > 0)
		w->depth--;
}

void jw_obj_begin(struct jw *w) { open_(w, "{"); }
void jw_obj_end(struct jw *w) { close_(w, "}"); }
void jw_arr_begin(struct jw *w) { open_(w, "["); }
void jw_arr_end(struct jw *w) { close_(w, "]"); }

/* Length of a valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t min;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		min = 0x10000;
	} else
		return 0;
	if (n < len)
		return 0;
	uint32_t cp = c & (0x7f >> len);
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
		return 0;
	return len;
}

static void put_string(struct jw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	put(w, "\"", 1);
	const unsigned char *u = (const unsigned char *)s;
	size_t k = 0;
	while (k < n) {
		unsigned char c = u[k];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			put(w, e, 2);
			k++;
		} else if (c == '\n') {
			put(w, "\\n", 2);
			k++;
		} else if (c == '\t') {
			put(w, "\\t", 2);
			k++;
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			put(w, e, 6);
			k++;
		} else {
			size_t l = utf8_len(u + k, n - k);
			if (l == 0) {
				put(w, "\\ufffd", 6);
				k++;
			} else {
				put(w, s + k, l);
				k += l;
			}
		}
	}
	put(w, "\"", 1);
}

void jw_key(struct jw *w, const char *key)
{
	sep(w);
	put_string(w, key, strlen(key));
	put(w, ":", 1);
	w->after_key = true;
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
	sep(w);
	put_string(w, s, n);
}

void jw_str(struct jw *w, const char *s)
{
	jw_strn(w, s, strlen(s));
}

void jw_int(struct jw *w, int64_t v)
{
	/* By hand: snprintf showed up in per-op profiles. */
	char b[24];
	char *q = b + sizeof b;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		*--q = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--q = '-';
	sep(w);
	put(w, q, (size_t)(b + sizeof b - q));
}

void jw_bool(struct jw *w, bool v)
{
	sep(w);
	puts_(w, v ? "true" : "false");
}

void jw_null(struct jw *w)
{
	sep(w);
	puts_(w, "null");
}

void jw_hex(struct jw *w, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	sep(w);
	put(w, "\"", 1);
	for (size_t k = 0; k < n; k++) {
		char e[2] = { hex[p[k] >> 4], hex[p[k] & 15] };
		put(w, e, 2);
	}
	put(w, "\"", 1);
}

void jw_kstr(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s);
}

void jw_kint(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_int(w, v);
}

void jw_kbool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	jw_bool(w, v);
}
