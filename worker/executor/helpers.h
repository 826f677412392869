/* Built-in helpers that set-up steps run as `blockfarm-exec --helper ...` (see helpers.c). */
#ifndef BF_HELPERS_H
#define BF_HELPERS_H

/* Run the helper named by argv[1]; -1 when argv[1] names none. */
int helper_main(int argc, char **argv);

/* The name a step's argv[0] uses for this executor's own binary. */
#define SELF_NAME "blockfarm-exec"

#endif
