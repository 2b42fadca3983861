/**
 * Redrive: a form with the workflow's own input (filter, fix set/remove, dry run, maximum),
 * turned into the execution input by the CLI's `redriveInput` (cli/redrive.ts), so a field the
 * CLI refuses is refused here with the same message; the run started on the redrive state
 * machine as `eventstore redrive` starts it; and the past runs, from the Step Functions API.
 */
import { ListExecutionsCommand } from '@aws-sdk/client-sfn';
import { integer } from '../../options.ts';
import { peekDeadLetters } from '../../inspect.ts';
import { redriveInput, startRedriveExecution, type RedriveInput } from '../../redrive.ts';
import { parseRedriveInput, planMessage, RedriveAttributes } from '../../../core/redrive.ts';
import { field, lines, type ConsoleApp, type ConsoleRequest, type Reply, type Route } from '../app.ts';
import { emptyNote, errorBox, markup, table, tokenField, type Html } from '../markup.ts';

/** The form as the user typed it: kept to show it again (an error) and to run a dry run for real. */
export interface RedriveForm {
  readonly filter: string;
  readonly set: string;
  readonly remove: string;
  readonly max: string;
  readonly dryRun: boolean;
}

/** What a dry run's preview shows for one dead letter: the body that would be sent, or why it would stay. */
export interface PreviewEntry {
  readonly messageId: string;
  readonly streamId: string | null;
  readonly send: boolean;
  /** The exact text that would go back to the queue (send), or the reason it would stay. */
  readonly body?: string;
  readonly reason?: string;
  readonly detail?: string | null;
}

export const EMPTY_FORM: RedriveForm = { filter: '', set: '', remove: '', max: '', dryRun: true };

function formOf(form: FormData | undefined): RedriveForm {
  return {
    filter: field(form, 'filter'),
    set: field(form, 'set'),
    remove: field(form, 'remove'),
    max: field(form, 'max').trim(),
    dryRun: field(form, 'dryRun') === 'on',
  };
}

/** The execution input, by the CLI's own parser; throws the CLI's errors (CliError, InvalidArgumentError). */
export function inputOf(form: RedriveForm): RedriveInput {
  return redriveInput({
    dryRun: form.dryRun,
    filter: lines(form.filter),
    set: lines(form.set),
    remove: lines(form.remove),
    ...(form.max !== '' ? { max: integer(1, 'maximum')(form.max) } : {}),
  });
}

/** The form's fields as hidden inputs (a dry run's "run it for real" button sends them again, dry run off). */
export function hiddenForm(form: RedriveForm, token: string): Html {
  return markup`${tokenField(token)}<input type="hidden" name="filter" value="${form.filter}" /><input
      type="hidden"
      name="set"
      value="${form.set}"
    /><input type="hidden" name="remove" value="${form.remove}" /><input
      type="hidden"
      name="max"
      value="${form.max}"
    />`;
}

function redriveFormHtml(form: RedriveForm, token: string): Html {
  return markup`<form method="post" action="/redrive" class="redrive">
    ${tokenField(token)}
    <label
      >Filter
      <small
        >one field=value per line: only events with these top-level values (EventType=ORDER_PLACED); a group matches
        when one of its events does</small
      >
      <textarea name="filter" rows="3">\n${form.filter}</textarea>
    </label>
    <label
      >Fix: set
      <small
        >one field=value per line (EmitterType=SYSTEM, Data.currency=EUR; Events.1.EmitterType=SYSTEM for the
        event at index 1, from 0, of a group); the value is JSON when it parses, else text</small
      >
      <textarea name="set" rows="3">\n${form.set}</textarea>
    </label>
    <label
      >Fix: remove <small>one field per line (Legacy, Data.tmp, Events.0.Legacy)</small>
      <textarea name="remove" rows="2">\n${form.remove}</textarea>
    </label>
    <label
      >Maximum <small>messages, 1 to 100000 (default 1000)</small>
      <input type="number" name="max" min="1" value="${form.max}"
    /></label>
    <label class="check"
      ><input type="checkbox" name="dryRun" ${form.dryRun ? markup` checked` : ''} /> Dry run: report what would happen,
      change nothing</label
    >
    <button type="submit">Start the redrive</button>
  </form>`;
}

async function pastRuns(app: ConsoleApp): Promise<Html> {
  const listed = await app.target.sfn.send(
    new ListExecutionsCommand({ stateMachineArn: app.target.stateMachineArn, maxResults: 100 }),
  );
  const runs = listed.executions ?? [];
  if (runs.length === 0) return emptyNote('No runs yet.');
  return table(
    ['Run', 'Status', 'Started', 'Stopped'],
    runs.map((run) => [
      markup`<a href="/redrive/execution?arn=${encodeURIComponent(run.executionArn ?? '')}">${run.name ?? ''}</a>`,
      markup`<span class="status ${run.status ?? ''}">${run.status ?? ''}</span>`,
      run.startDate?.toISOString() ?? '',
      run.stopDate?.toISOString() ?? '',
    ]),
    'past runs',
  );
}

async function redrivePage(app: ConsoleApp, form: RedriveForm, error?: string, status = 200): Promise<Reply> {
  const body = markup`${errorBox(error)}
    <p>
      The redrive workflow (Step Functions) takes the dead letters, applies the fix to those the filter matches,
      validates them again with the ingest's own rules, and sends the valid ones back to the queue (README "Redrive
      rejected events"). Start with a dry run: it changes nothing and shows what would be sent.
    </p>
    ${redriveFormHtml(form, app.token)}
    <h2>Past runs</h2>
    ${await pastRuns(app)}`;
  return app.page({ title: 'Redrive', section: '/redrive', body }, status);
}

/**
 * What the dry run would send, message by message: the dead letters as `peekDeadLetters` sees
 * them, planned by the workflow's own `planMessage` (core/redrive.ts: filter, fix, validation
 * with the ingest's parser). Undefined when the input is invalid (the workflow itself says why).
 */
async function preview(app: ConsoleApp, input: RedriveInput): Promise<PreviewEntry[] | undefined> {
  const parsed = parseRedriveInput({ ...input, dryRun: false });
  if (!parsed.ok) return undefined;
  const messages = await peekDeadLetters(app.target, Math.min(parsed.options.maxMessages, 100));
  return messages.map((message) => {
    const plan = planMessage(
      {
        MessageId: message.messageId,
        ReceiptHandle: '',
        Body: message.body,
        MessageAttributes: {
          [RedriveAttributes.redriveCount]: { DataType: 'Number', StringValue: String(message.redriveCount) },
        },
      },
      parsed.options,
    );
    return plan.action === 'send'
      ? { messageId: message.messageId, streamId: plan.streamId, send: true, body: plan.message.body }
      : {
          messageId: message.messageId,
          streamId: plan.streamId,
          send: false,
          reason: plan.reason,
          detail: plan.detail,
        };
  });
}

async function startRun(app: ConsoleApp, request: ConsoleRequest): Promise<Reply> {
  const form = formOf(request.form);
  let input: RedriveInput;
  try {
    input = inputOf(form);
  } catch (error) {
    return redrivePage(app, form, error instanceof Error ? error.message : String(error), 400);
  }
  const busy = () => redrivePage(app, form, 'A redrive is running: wait until it has ended (see Past runs).', 409);
  if (app.startingRedrive) return busy();
  app.startingRedrive = true;
  try {
    if (await app.redriveRunning()) return await busy();
    // The preview looks at the DLQ first, then the run starts: never both at once.
    const previewed = input.dryRun ? await preview(app, input) : undefined;
    const executionArn = await startRedriveExecution(app.target, input, 'console');
    app.remember(`redrive:${executionArn}`, { form, preview: previewed });
    return { kind: 'redirect', location: `/redrive/execution?arn=${encodeURIComponent(executionArn)}` };
  } finally {
    app.startingRedrive = false;
  }
}

export const redriveRoutes: Route[] = [
  { method: 'GET', path: '/redrive', handle: (app) => redrivePage(app, EMPTY_FORM) },
  { method: 'POST', path: '/redrive', handle: startRun },
];
