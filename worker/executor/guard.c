/* Catching faults of guarded accesses; see guard.h. */
#define _GNU_SOURCE
#include "guard.h"

#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

/* Per thread: where to jump when a guarded access faults (NULL: not in one). */
static __thread sigjmp_buf *tl_jmp;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (tl_jmp)
		siglongjmp(*tl_jmp, sig);
	/* A fault outside a guarded access is the executor's own bug: die as the default action would. */
	signal(sig, SIG_DFL);
	raise(sig);
}

void guard_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

int guarded(void (*fn)(void *), void *arg)
{
	sigjmp_buf jb;
	/* savemask = 1: the jump restores the signal mask, so the next fault is caught too. */
	int sig = sigsetjmp(jb, 1);
	if (sig == 0) {
		tl_jmp = &jb;
		fn(arg);
		tl_jmp = NULL;
		return 0;
	}
	tl_jmp = NULL;
	return sig;
}
