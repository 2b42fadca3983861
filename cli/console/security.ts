/**
 * Who may use the console (README "The console", "Safety"): it listens on 127.0.0.1 only, and
 * every request must
 * - name the console itself in its Host header (127.0.0.1:PORT or localhost:PORT), so a page
 *   on another site whose name a DNS server points at 127.0.0.1 (DNS rebinding) is refused;
 * - carry this start's token: from the address `npm start` printed (`/?token=...`), which sets a
 *   cookie (HttpOnly, SameSite=Lax) that the browser then sends to this origin only;
 * and every state-changing request (POST) must also come from the console's own pages: an
 * `Origin` header equal to the console's origin, and the token again in the form body (a
 * hidden field that only a page of this origin can read). So a web page the user visits can
 * neither read the console nor redrive, reset, resume or publish through it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A new token for one start: 32 random bytes, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether `given` is the token, compared in constant time. */
export function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The cookie that carries the token; named by port, so two consoles on one machine keep theirs apart. */
export function cookieName(port: number): string {
  return `eventstore_console_${port}`;
}

/** The Set-Cookie header value for the token. */
export function tokenCookie(port: number, token: string): string {
  return `${cookieName(port)}=${token}; Path=/; HttpOnly; SameSite=Lax`;
}

/** One cookie's value from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/** The Host header values the console answers to. */
export function allowedHosts(port: number): string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`];
}

/** Why a request is refused before any page runs, or undefined when it may go on. */
export type Refusal = { readonly status: 403 | 421; readonly message: string } | { readonly status: 401 };

/** Checks that need no body: Host, and the token cookie (or the token in the entry address). */
export function checkRequest(request: IncomingMessage, port: number, token: string, url: URL): Refusal | undefined {
  const host = (request.headers.host ?? '').toLowerCase();
  if (!allowedHosts(port).includes(host)) {
    return {
      status: 421,
      message: `This console answers only at http://127.0.0.1:${port}/ (the request named host ${JSON.stringify(host)}).`,
    };
  }
  const fromCookie = cookieValue(request.headers.cookie, cookieName(port));
  const fromAddress = url.pathname === '/' ? (url.searchParams.get('token') ?? undefined) : undefined;
  if (!sameToken(fromCookie, token) && !sameToken(fromAddress, token)) return { status: 401 };
  if (request.method === 'POST') return checkOrigin(request, host);
  return undefined;
}

/**
 * A POST must come from a page of the console: its Origin header is the console's origin
 * (browsers send it with every POST); a request without one (not a browser) or from another
 * origin is refused. `Sec-Fetch-Site`, where the browser sends it, must say same-origin.
 */
function checkOrigin(request: IncomingMessage, host: string): Refusal | undefined {
  const origin = request.headers.origin;
  if (origin !== `http://${host}`) {
    return {
      status: 403,
      message: `Refused: a change must come from the console's own page (Origin ${origin === undefined ? 'missing' : JSON.stringify(origin)}, expected "http://${host}").`,
    };
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') {
    return {
      status: 403,
      message: `Refused: a change must come from the console's own page (Sec-Fetch-Site ${site}).`,
    };
  }
  return undefined;
}

/** The form's token must be this start's token (the hidden field of markup.ts `tokenField`). */
export function checkFormToken(form: FormData, token: string): Refusal | undefined {
  const given = form.get('token');
  return sameToken(typeof given === 'string' ? given : undefined, token)
    ? undefined
    : { status: 403, message: "Refused: the form does not carry this start's token; reload the page and try again." };
}

/** Headers on every response: no framing (clickjacking), scripts and styles from this origin only, nothing cached. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Not no-referrer: under it, browsers send `Origin: null` even with a same-origin POST.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};
