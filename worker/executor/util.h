/* Small shared helpers: clocks, errno names, event output. */
#ifndef BF_UTIL_H
#define BF_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"

int64_t now_ns(void);

/* "EINVAL", "EIO", ...; unknown numbers as "E<number>" (a static or thread-local string). */
const char *errno_name(int e);

/*
 * Write one event line (the writer's text plus '\n') to stdout at once.
 * Thread-safe; lines never interleave. After events_close() nothing more is
 * written (a thread that outlives the run must not add lines after 'done').
 */
/* Write one event line now (after any batched results). */
void emit(struct jw *w);
/* Queue an op result; it goes out within 20 ms or with the next other event. */
void emit_batched(struct jw *w);
/* Write queued results now. */
void events_flush(void);
void events_close(void);

/* Read a whole small file (sysfs), trimmed; false when it cannot be read. */
bool read_small_file(const char *path, char *buf, size_t len);

#endif
