/* Test entry points of the binary: the pattern and the decoder without a plan. */
#ifndef BF_TOOLS_H
#define BF_TOOLS_H

int tool_main(int argc, char **argv);

#endif
