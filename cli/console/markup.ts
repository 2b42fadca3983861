/**
 * Server-rendered HTML for the console (README "The console"): a tagged template that escapes
 * every interpolated value unless it is already HTML, the page layout, and the few building
 * blocks the pages share (tables, JSON shown exactly, notices).
 */

/** A piece of HTML that is safe as it is (built by `markup`, or one of the helpers below). */
export class Html {
  public constructor(public readonly text: string) {}

  public toString(): string {
    return this.text;
  }
}

/** Escape text for an element's content or a double-quoted attribute value. */
export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(String(part));
}

/**
 * HTML from a template (named `markup`, not `html`, so that Prettier leaves its text alone: it would drop the newline that keeps a body's first line in <pre>): interpolated strings are escaped, `Html` values and arrays of them are
 * inserted as they are, `null`, `undefined` and `false` disappear.
 *
 * @example
 * markup`<td>${event.ID}</td>`; // an ID of "<b>" shows as text, never as markup
 */
export function markup(strings: TemplateStringsArray, ...values: readonly Part[]): Html {
  let text = strings[0] ?? '';
  values.forEach((value, index) => {
    text += render(value) + (strings[index + 1] ?? '');
  });
  return new Html(text);
}

/** The pages, in the navigation's order. */
export const PAGES = [
  { path: '/rejected', title: 'Rejected' },
  { path: '/redrive', title: 'Redrive' },
  { path: '/streams', title: 'Streams' },
  { path: '/subscriptions', title: 'Subscriptions' },
  { path: '/publish', title: 'Publish' },
] as const;

export interface PageOptions {
  readonly title: string;
  /** The navigation entry to mark as current. */
  readonly section: (typeof PAGES)[number]['path'];
  readonly body: Html;
  /** What the stack is (queue mode, data folder), shown under the navigation. */
  readonly stackLine: string;
  /** Reload the page after this many seconds (a running redrive, publish outcomes still pending). */
  readonly refreshSeconds?: number;
}

/** A whole page: head, navigation, body. Scripts and styles come from /assets (the CSP allows only 'self'). */
export function page(options: PageOptions): Html {
  const nav = PAGES.map((entry) => {
    const current = entry.path === options.section ? new Html(' aria-current="page"') : '';
    return markup`<a href="${entry.path}"${current}>${entry.title}</a>`;
  });
  return markup`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        ${options.refreshSeconds !== undefined ? markup`<meta http-equiv="refresh" content="${options.refreshSeconds}" />` : ''}
        <title>${options.title} - event store console</title>
        <link rel="stylesheet" href="/assets/console.css" />
        <script src="/assets/console.js" defer></script>
      </head>
      <body>
        <header>
          <strong>event store</strong>
          <nav>${nav}</nav>
          <small>${options.stackLine}</small>
        </header>
        <main>
          <h1>${options.title}</h1>
          ${options.body}
        </main>
      </body>
    </html> `;
}

/** An error box: the same one-line message the CLI prints for the same input. */
export function errorBox(message: string | undefined): Html {
  return message === undefined ? markup`` : markup`<p class="error" role="alert">${message}</p>`;
}

/** A notice box (what an action did). */
export function noticeBox(message: string | undefined): Html {
  return message === undefined ? markup`` : markup`<p class="notice" role="status">${message}</p>`;
}

/** A table: one header row, then one row per item. */
export function table(headers: readonly string[], rows: readonly (readonly Part[])[], label?: string): Html {
  const head = headers.map((header) => markup`<th>${header}</th>`);
  const body = rows.map((row) => markup`<tr>${row.map((cell) => markup`<td>${cell}</td>`)}</tr>`);
  const labelled = label ? markup` aria-label="${label}"` : '';
  return markup`<table${labelled}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/**
 * JSON text shown exactly as given (a dead letter's body, a stream's `Data` written with
 * `JSON.stringify`, which keeps `ExactNumber` literals): never parsed into doubles here.
 */
export function codeBlock(text: string, className = 'json'): Html {
  // The newline after <pre> is dropped by the HTML parser, so a body that starts with one keeps it.
  return markup`<pre class="${className}">\n${text}</pre>`;
}

/** The hidden field every state-changing form carries: this start's token (server.ts checks it). */
export function tokenField(token: string): Html {
  return markup`<input type="hidden" name="token" value="${token}" />`;
}

/** A value of a JSON report as HTML: objects as definition lists, arrays of objects as tables. */
export function jsonView(value: unknown): Html {
  if (Array.isArray(value)) {
    if (value.length === 0) return markup`<em>none</em>`;
    if (value.every((item) => item !== null && typeof item === 'object' && !Array.isArray(item))) {
      const rows = value as Record<string, unknown>[];
      const keys = [...new Set(rows.flatMap((row) => Object.keys(row)))];
      return table(
        keys,
        rows.map((row) => keys.map((key) => scalar(row[key]))),
      );
    }
    return markup`<ul>${value.map((item) => markup`<li>${jsonView(item)}</li>`)}</ul>`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return markup`<dl>${entries.map(([key, inner]) => markup`<dt>${key}</dt><dd>${jsonView(inner)}</dd>`)}</dl>`;
  }
  return scalar(value);
}

function scalar(value: unknown): Html {
  if (value === undefined) return markup``;
  if (typeof value === 'string') return markup`${value}`;
  if (value !== null && typeof value === 'object') return markup`<code>${JSON.stringify(value)}</code>`;
  return markup`<code>${String(value)}</code>`;
}

/** A page's "nothing here" paragraph. */
export function emptyNote(text: string): Html {
  return markup`<p class="empty">${text}</p>`;
}
