/*
 * The read decoder: bytes read at object address `addr` become runs, each
 * attributed to zero, to an (op, delta) candidate (byte i equals
 * patternByte(seed, op, addr + i + delta)), to 'unknown' or (final reads
 * only) to 'error'. It mirrors decodeBytes in model/pattern.ts except inside
 * garbage, see decode.c.
 *
 * The decoder is streaming: a read can be fed in pieces (1 MiB chunks of a
 * final read) and runs continue across them.
 */
#ifndef BF_DECODE_H
#define BF_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum src_kind { SRC_ZERO, SRC_UNKNOWN, SRC_ERROR, SRC_OP };

#define SAMPLE_MAX 16

struct run {
	int64_t offset; /* relative to the decoder's origin */
	int64_t length;
	enum src_kind kind;
	int64_t op, delta; /* SRC_OP */
	uint8_t sample[SAMPLE_MAX]; /* SRC_UNKNOWN: the first bytes */
	int sample_len;
};

struct runs {
	struct run *v;
	size_t n, cap;
	bool oom;
};

struct candidate {
	int64_t op, delta;
	uint32_t key; /* pattern_key(seed, op) */
	/*
	 * Where this source's bytes can be: op wrote [o, o+len), so (op, delta)
	 * explains address x only if x + delta is in there. Elsewhere a match is
	 * chance. Without a home (op is not a write of the plan) it is tried everywhere.
	 */
	bool homed;
	int64_t home_start, home_end;
};

struct bucket; /* candidates by 64 KiB address bucket of their home */

struct cand_set {
	uint32_t seed;
	struct candidate *v;
	size_t n;
	/* After cand_set_index: candidates tried everywhere, and the others by bucket. */
	bool indexed;
	uint32_t *wide;
	size_t nwide;
	struct bucket *buckets;
	size_t nbuckets; /* capacity, a power of two */
};

/* Precompute keys; returns false when out of memory. Every candidate starts without a home. */
bool cand_set_init(struct cand_set *cs, uint32_t seed, const int64_t (*pairs)[2], size_t n);
/* Candidate k's bytes can only be at [start, end) (set before cand_set_index). */
void cand_set_home(struct cand_set *cs, size_t k, int64_t start, int64_t end);
/* Build the index: from then on a run start tries only zero, the candidates without a home and those whose home covers the address. */
bool cand_set_index(struct cand_set *cs);
void cand_set_free(struct cand_set *cs);

/* Decoder state: `cur` is the source of the run in progress. */
enum { CUR_NONE = -2, CUR_UNKNOWN = -1, CUR_ZERO = 0 /* then 1 + candidate index */ };

#define RETRY_ALIGN 16

struct decoder {
	const struct cand_set *cs;
	struct runs *out;
	int64_t origin; /* output offsets are addr - origin */
	long cur;
	/* The last bytes fed, for extending a run backwards across a feed boundary. */
	uint8_t tail[RETRY_ALIGN];
	int tail_len;
	int64_t tail_end; /* address just past tail */
};

void decoder_init(struct decoder *d, const struct cand_set *cs, struct runs *out, int64_t origin);

/*
 * Decode bytes[0, n) that sit at object address addr. bytes[n, avail) are
 * valid too and serve as look-ahead only (the next piece); end_addr is where
 * the whole read ends (inside garbage, a match must be min(4, remaining) long).
 */
void decode_feed(struct decoder *d, const uint8_t *bytes, size_t n, size_t avail, int64_t addr, int64_t end_addr);

/* [addr, addr+len) could not be read. */
void decode_error(struct decoder *d, int64_t addr, int64_t len);

void runs_free(struct runs *r);

struct jw;
/* The runs as a JSON array of DecodedRun (protocol.ts). */
void runs_to_json(struct jw *w, const struct runs *r);

#endif
