/**
 * Rejected: the dead letters grouped by reason, each with its detail, stream, time, redrive
 * count and its body exactly as it sits in the queue; the same look at the DLQ as `eventstore
 * rejected` (cli/inspect.ts), with the same FIFO note.
 */
import { fifoHiddenNote, groupByReason, peekDeadLetters, queueDepth, type RejectedMessage } from '../../inspect.ts';
import { integer } from '../../options.ts';
import type { ConsoleApp, Reply, Route } from '../app.ts';
import { codeBlock, emptyNote, errorBox, markup, noticeBox, table, type Html } from '../markup.ts';

const DEFAULT_LIMIT = 100;

/** A link to a stream's page. */
export function streamLink(id: string | undefined | null): Html {
  return id ? markup`<a href="/streams/view?id=${encodeURIComponent(id)}">${id}</a>` : markup`<em>no ID</em>`;
}

function messageRow(message: RejectedMessage): Html[] {
  return [
    markup`<code>${message.messageId}</code>`,
    streamLink(message.streamId),
    markup`${message.rejectedAt ?? ''}`,
    markup`${String(message.redriveCount)}`,
    markup`${message.detail ?? ''}`,
    codeBlock(message.body, 'json body'),
  ];
}

function reasonSection(reason: string, messages: readonly RejectedMessage[]): Html {
  return markup`<section class="reason" data-reason="${reason}">
    <h2>${reason} <span class="count">${messages.length}</span></h2>
    ${table(['Message', 'Stream', 'Rejected at', 'Redrives', 'Detail', 'Body (exactly as in the queue)'], messages.map(messageRow), reason)}
  </section>`;
}

async function rejectedBody(app: ConsoleApp, limit: number): Promise<Html> {
  const [messages, depth] = await Promise.all([
    peekDeadLetters(app.target, limit),
    queueDepth(app.target, app.target.deadLetterQueueUrl),
  ]);
  const total = depth.visible + depth.inFlight;
  if (messages.length === 0) return emptyNote(`The dead-letter queue of ${app.target.label} is empty.`);
  const note = fifoHiddenNote(app.target, messages.length, total, limit);
  const groups = [...groupByReason(messages)].sort((a, b) => b[1].length - a[1].length);
  return markup`<p class="summary">${messages.length} shown; the dead-letter queue holds about ${total}.</p>
    ${note ? markup`<p class="note" role="note">Note: ${note}.</p>` : ''}
    <p>Reasons: ${groups.map(([reason, list]) => markup`<a href="#${reason}">${reason}</a> (${list.length}) `)}</p>
    ${groups.map(([reason, list]) => markup`<a id="${reason}"></a>${reasonSection(reason, list)}`)}
    <p>Repair and send them back on the <a href="/redrive">Redrive</a> page: a dry run first, then the real run.</p>`;
}

async function rejectedPage(app: ConsoleApp, url: URL): Promise<Reply> {
  const limitText = url.searchParams.get('limit');
  let limit = DEFAULT_LIMIT;
  try {
    if (limitText !== null) limit = integer(1, 'limit')(limitText);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return app.page({ title: 'Rejected', section: '/rejected', body: errorBox(message) }, 400);
  }
  const running = await app.redriveRunning();
  const body = running
    ? noticeBox(
        'A redrive is running: the dead-letter queue is shown when it has ended (looking would hide messages from it). This page reloads.',
      )
    : await rejectedBody(app, limit);
  return app.page({
    title: 'Rejected',
    section: '/rejected',
    body: markup`<form method="get" action="/rejected" class="inline">
        <label>Show at most <input type="number" name="limit" min="1" value="${String(limit)}" /></label>
        <button>Look again</button>
      </form>
      ${body}`,
    ...(running ? { refreshSeconds: 2 } : {}),
  });
}

export const rejectedRoutes: Route[] = [
  { method: 'GET', path: '/rejected', handle: (app, request) => rejectedPage(app, request.url) },
];
