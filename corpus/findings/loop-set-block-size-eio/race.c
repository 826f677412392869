#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <errno.h>
#include <stdatomic.h>
static const char *dev; static atomic_int stop; static int toggle_dio;
static void *flipper(void *a) {
  (void)a; int ctl = open(dev, O_RDWR);
  while (!stop) {
    if (toggle_dio) ioctl(ctl, LOOP_SET_DIRECT_IO, 1);
    ioctl(ctl, LOOP_SET_BLOCK_SIZE, 4096);
    if (toggle_dio) ioctl(ctl, LOOP_SET_DIRECT_IO, 0);
    ioctl(ctl, LOOP_SET_BLOCK_SIZE, 512);
  }
  return NULL;
}
int main(int argc, char **argv) {
  dev = argv[1]; toggle_dio = atoi(argv[2]); int iters = atoi(argv[3]);
  int fd = open(dev, O_RDWR | O_DIRECT);
  char *buf; posix_memalign((void **)&buf, 4096, 8192); memset(buf, 0x5a, 8192);
  pthread_t t; pthread_create(&t, NULL, flipper, NULL);
  int ok = 0, einval = 0, eio = 0, other = 0;
  for (int i = 0; i < iters; i++) {
    struct iovec iov[3] = {{buf + 512, 512}, {buf + 1024, 512}, {buf + 1536, 512}};
    ssize_t n = pwritev2(fd, iov, 3, 16896, 0);
    if (n == 1536) ok++; else if (n < 0 && errno == EINVAL) einval++; else if (n < 0 && errno == EIO) eio++; else { other++; printf("other: %zd %s\n", n, strerror(errno)); }
  }
  stop = 1; pthread_join(t, NULL);
  printf("toggle_dio=%d: ok %d, EINVAL %d, EIO %d, other %d\n", toggle_dio, ok, einval, eio, other);
  return 0;
}
