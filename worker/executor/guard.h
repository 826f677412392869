/*
 * Memory accesses that may fault: stores and loads through a shared mapping
 * of a file (SIGBUS past EOF, or when a page cannot be read in or allocated),
 * and decoding a read that landed in such a mapping. The fault is caught in
 * the thread that raised it and reported as the op's signal.
 */
#ifndef BF_GUARD_H
#define BF_GUARD_H

/* Install the SIGBUS/SIGSEGV handlers (once, process-wide). */
void guard_install(void);

/* Run fn(arg); 0 when it returned, or the signal (SIGBUS, SIGSEGV) that cut it short. */
int guarded(void (*fn)(void *), void *arg);

#endif
