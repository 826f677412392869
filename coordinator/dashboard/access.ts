/**
 * Who may see the dashboard. Bound to a loopback address it is open to this
 * machine's users; bound anywhere else it needs a token, checked on every
 * request (pages, API, /queues, /metrics): `Authorization: Bearer TOKEN`,
 * or the cookie a browser gets from opening any page once with ?token=TOKEN.
 */
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { UsageProblem } from '../farm/cli-options.ts';

export const TOKEN_ENV = 'BLOCKFARM_DASHBOARD_TOKEN';
export const TOKEN_COOKIE = 'blockfarm_dashboard_token';
/** Tokens shorter than this are refused (a guessable token is no protection). */
export const MIN_TOKEN_LENGTH = 16;

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** Why the dashboard may not start with this bind and token, in one line, or undefined. */
export function bindProblem(host: string, token: string | undefined): string | undefined {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) return `the dashboard token must be at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 16)`;
  if (!token && !isLoopbackHost(host))
    return `refusing to serve the dashboard on ${host} without a token: pass --token TOKEN or set ${TOKEN_ENV} (or bind to 127.0.0.1)`;
  return undefined;
}

export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/** A TCP port from an option value (0 = any free port); a usage problem otherwise. */
export function parsePort(text: string, what = '--port'): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n > 65535) throw new UsageProblem(`${what}: '${text}' is not a TCP port (0-65535)`);
  return n;
}
