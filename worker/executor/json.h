/*
 * A small JSON reader (into a tree) and a line writer, enough for the
 * executor's protocol (worker/executor/protocol.ts): plans come in as one
 * document, events go out as one object per line.
 */
#ifndef BF_JSON_H
#define BF_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype t;
	bool b;
	/* Numbers: `num` always; `i` exact when `is_int` (an integer literal or an integral double within 2^53). */
	double num;
	int64_t i;
	bool is_int;
	/* Strings: NUL-terminated UTF-8 (`len` excludes the NUL; embedded NULs are kept). */
	char *s;
	size_t len;
	/* Arrays and objects: `n` items; objects also have `keys`. */
	struct jval *items;
	char **keys;
	size_t n;
};

/* Parse `len` bytes. NULL on error, with a message (including the byte offset) in `err`. */
struct jval *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(struct jval *v);

/* Member of an object, or NULL. */
const struct jval *json_get(const struct jval *obj, const char *key);

/* ---- writer: a growable buffer holding one JSON text ---- */

#define JW_DEPTH 32

struct jw {
	char *buf;
	size_t len, cap;
	int depth;
	bool first[JW_DEPTH]; /* no value written yet at this depth */
	bool after_key;
	bool oom;
};

void jw_init(struct jw *w);
void jw_free(struct jw *w);
void jw_reset(struct jw *w);
void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *key);
/* Strings are written as valid JSON whatever the bytes: invalid UTF-8 becomes U+FFFD. */
void jw_str(struct jw *w, const char *s);
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, int64_t v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* Bytes as a lowercase hex string. */
void jw_hex(struct jw *w, const uint8_t *p, size_t n);

/* Shorthands for "key": value inside an object. */
void jw_kstr(struct jw *w, const char *key, const char *s);
void jw_kint(struct jw *w, const char *key, int64_t v);
void jw_kbool(struct jw *w, const char *key, bool v);

#endif
