/**
 * The kernel log since a point in time, from /dev/kmsg: open it non-blocking,
 * skip what is there now, and later read what was added. Records are
 * "prio,seq,usec,flags;text"; a record overwritten before we read it
 * (EPIPE) is skipped, the others are returned in order.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';

export class KmsgCursor {
  private constructor(private readonly fd: number) {}

  /** Undefined when /dev/kmsg cannot be read (not root, no such device). */
  static open(): KmsgCursor | undefined {
    try {
      const c = new KmsgCursor(openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK));
      c.read();
      return c;
    } catch {
      return undefined;
    }
  }

  /** Records added since the last call, as kmsg lines. */
  read(): string[] {
    const out: string[] = [];
    const buf = Buffer.alloc(16384);
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue;
        if (code === 'EAGAIN') break;
        throw err;
      }
      if (n <= 0) break;
      out.push(buf.toString('utf8', 0, n).replace(/\n$/, ''));
    }
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}
