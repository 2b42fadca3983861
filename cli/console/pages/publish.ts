/**
 * Publish: paste events or upload a file (one JSON object, JSON Lines, or a JSON array), sent
 * by the CLI's own `parseEventsText` and `publishMessages` (cli/publish.ts: the same batches,
 * FIFO groups and deduplication ids as `eventstore publish`), then each event's outcome
 * (cli/outcomes.ts) until every one is decided.
 */
import { randomUUID } from 'node:crypto';
import { CliError } from '../../errors.ts';
import { publishOutcomes, type PublishOutcome } from '../../outcomes.ts';
import { eventsIn, parseEventsText, publishMessages, type Outgoing, type PublishReport } from '../../publish.ts';
import { field, type ConsoleApp, type ConsoleRequest, type Reply, type Route } from '../app.ts';
import { codeBlock, errorBox, markup, noticeBox, table, tokenField, type Html } from '../markup.ts';
import { streamLink } from './rejected.ts';

/** How long the result page keeps reloading while an outcome is still open. */
const FOLLOW_MS = 120_000;

interface Published {
  readonly messages: readonly Outgoing[];
  readonly report: PublishReport;
  readonly since: number;
}

function publishForm(app: ConsoleApp, text: string, error?: string, status = 200): Reply {
  const body = markup`${errorBox(error)}
    <p>
      Events go to the ingest queue of ${app.target.label} (${app.target.queueMode} queue) exactly as written, as
      <code>npx eventstore publish</code> sends them: the store decides, and this page then shows what became of each
      one. A group, <code>{"ID": ..., "Events": [...]}</code>, is one message whose events are stored all or nothing.
    </p>
    <form method="post" action="/publish" enctype="multipart/form-data" class="publish">
      ${tokenField(app.token)}
      <label
        >Events <small>one JSON object, one per line (JSON Lines), or a JSON array</small>
        <textarea name="events" rows="12" spellcheck="false">\n${text}</textarea>
      </label>
      <label
        >or a file <input type="file" name="file" accept=".json,.jsonl,.ndjson,application/json,text/plain"
      /></label>
      <button type="submit">Publish</button>
    </form>`;
  return app.page({ title: 'Publish', section: '/publish', body }, status);
}

async function inputText(form: FormData | undefined): Promise<string> {
  const file = form?.get('file');
  if (file instanceof File && file.size > 0) return file.text();
  return field(form, 'events');
}

async function publish(app: ConsoleApp, request: ConsoleRequest): Promise<Reply> {
  const text = await inputText(request.form);
  let messages: Outgoing[];
  try {
    messages = parseEventsText(text);
    if (messages.length === 0)
      throw new CliError(
        'nothing to publish: paste events (one JSON object per line, or a JSON array) or choose a file',
      );
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return publishForm(app, field(request.form, 'events'), error.message, 400);
  }
  const since = Date.now();
  const report = await publishMessages(app.target, messages);
  const id = randomUUID();
  app.remember(`publish:${id}`, { messages, report, since } satisfies Published);
  return { kind: 'redirect', location: `/publish/result?id=${id}` };
}

/** `3 event(s)`, or with a group among them `2 message(s) (5 events)`: a group is one message of several events. */
function sentCount(messages: readonly Outgoing[]): string {
  if (!messages.some((message) => message.events !== undefined)) return `${messages.length} event(s)`;
  const events = messages.reduce((sum, message) => sum + eventsIn(message), 0);
  return `${messages.length} message(s) (${events} events)`;
}

function outcomeCell(outcome: PublishOutcome, following: boolean): Html {
  switch (outcome.status) {
    case 'stored': {
      // A group's events: versions `version` to `version + count - 1` (docs/ARCHITECTURE.md, "Groups").
      const versions =
        outcome.count === undefined
          ? `version ${String(outcome.version)}`
          : `versions ${String(outcome.version)} to ${String(outcome.version + outcome.count - 1)} (a group of ${String(outcome.count)})`;
      return markup`<span class="outcome stored">${outcome.earlier ? 'already stored' : 'stored'}</span> as
        <a href="/streams/view?id=${encodeURIComponent(outcome.streamId)}&amp;from=${String(outcome.version)}"
          >${versions}</a
        >${outcome.earlier ? ' (a duplicate of an earlier copy)' : ''}`;
    }
    case 'rejected':
      return markup`<span class="outcome rejected">rejected: ${outcome.reason}</span>
        <span class="detail">${outcome.detail}</span>`;
    default:
      return markup`<span class="outcome pending"
        >${following ? 'waiting for the store...' : 'not decided yet (see Rejected, or look again)'}</span
      >`;
  }
}

async function resultPage(app: ConsoleApp, request: ConsoleRequest): Promise<Reply> {
  const published = app.recall<Published>(`publish:${request.url.searchParams.get('id') ?? ''}`);
  if (!published) return publishForm(app, '', 'This publish result is no longer kept; publish again.', 404);
  const { messages, report, since } = published;
  const outcomes = await publishOutcomes(
    app.target,
    messages.map((message) => message.body),
    { since, deadLetters: !(await app.redriveRunning()) },
  );
  const open = outcomes.filter((outcome) => outcome.status === 'pending').length;
  const following = open > 0 && Date.now() - since < FOLLOW_MS;
  const failure =
    report.failed > 0
      ? `${report.failed} events could not be sent: ${report.errors.slice(0, 3).join('; ')}`
      : undefined;
  const body = markup`${errorBox(failure)}
    ${noticeBox(`Sent ${report.sent} of ${sentCount(messages)} to ${app.target.label}; ${messages.length - open} decided, ${open} open.`)}
    ${table(
      ['#', 'Stream', 'Outcome', 'Body as sent'],
      messages.map((message, index) => [
        String(index + 1),
        streamLink(message.streamId),
        outcomeCell(outcomes[index]!, following),
        codeBlock(message.body, 'json body'),
      ]),
      'outcomes',
    )}
    <p><a href="/publish">Publish more</a></p>`;
  return app.page({
    title: 'Published',
    section: '/publish',
    body,
    ...(following ? { refreshSeconds: 1 } : {}),
  });
}

export const publishRoutes: Route[] = [
  { method: 'GET', path: '/publish', handle: (app) => Promise.resolve(publishForm(app, '')) },
  { method: 'POST', path: '/publish', handle: publish },
  { method: 'GET', path: '/publish/result', handle: resultPage },
];
