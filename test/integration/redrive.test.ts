import { SendMessageCommand, type MessageAttributeValue, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MessageAttributeNames } from '../../core/message-attributes.ts';
import type { RedriveReport } from '../../core/redrive-run.ts';
import { runLocalRedrive, type CfnTemplate } from '../../local/workflow-runner.ts';
import { sqsClient } from '../support/engines.ts';
import { drainQueue, validEvent, type EventBody } from '../support/factories.ts';
import { createRedriveQueues, redriveTemplate, succeeded } from './redrive-support.ts';

/** A dead-lettered order event without `Data`; tests change one field at a time. */
const event = (overrides: EventBody = {}): EventBody =>
  validEvent({ EventType: 'ORDER_PLACED', ID: 'order-1', EmitterId: 'checkout', Data: undefined, ...overrides });

/** What the ingest handler attaches when it dead-letters an event. */
function rejection(reason: string, detail: string): Record<string, MessageAttributeValue> {
  return {
    [MessageAttributeNames.rejectionReason]: { DataType: 'String', StringValue: reason },
    [MessageAttributeNames.rejectionDetail]: { DataType: 'String', StringValue: detail },
    [MessageAttributeNames.rejectedAt]: { DataType: 'String', StringValue: '2026-11-24T09:00:00.000Z' },
    [MessageAttributeNames.sourceMessageId]: { DataType: 'String', StringValue: 'original-message' },
    [MessageAttributeNames.redriveCount]: { DataType: 'Number', StringValue: '0' },
  };
}

async function deadLetter(
  sqs: SQSClient,
  queueUrl: string,
  body: unknown,
  options: { attributes?: Record<string, MessageAttributeValue>; group?: string } = {},
): Promise<string> {
  const sent = await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
      ...(options.attributes ? { MessageAttributes: options.attributes } : {}),
      ...(options.group ? { MessageGroupId: options.group, MessageDeduplicationId: crypto.randomUUID() } : {}),
    }),
  );
  return sent.MessageId!;
}

describe('redrive workflow (the synthesized definition, run locally against fauxqs)', () => {
  const sqs = sqsClient();
  const sqsEndpoint = inject('sqsEndpoint');
  let standard: CfnTemplate;
  let fifo: CfnTemplate;

  beforeAll(() => {
    standard = redriveTemplate('standard');
    fifo = redriveTemplate('fifo');
  });
  afterAll(() => {
    sqs.destroy();
  });

  it('redrives events a fix makes valid, keeps the rest with reasons, and leaves them visible again', async () => {
    // Prepare: two events missing EmitterType, one also with a bad EventType, one dead-lettered natively
    const queueUrls = await createRedriveQueues(sqs, false);
    const missing = rejection('SchemaViolation', 'EmitterType: required field is missing');
    const { EmitterType: _a, ...withoutEmitter } = event({ ID: 'order-1', Data: { total: 12 } });
    const fixable1 = await deadLetter(sqs, queueUrls.deadLetter, withoutEmitter, { attributes: missing });
    const { EmitterType: _b, ...alsoWithout } = event({ ID: 'order-2' });
    const fixable2 = await deadLetter(sqs, queueUrls.deadLetter, alsoWithout, { attributes: missing });
    const { EmitterType: _c, ...badType } = event({ ID: 'order-3', EventType: 'order placed' });
    const unfixable = await deadLetter(sqs, queueUrls.deadLetter, badType, { attributes: missing });
    const native = await deadLetter(sqs, queueUrls.deadLetter, event({ ID: 'order-4' }));

    // Act
    const report = succeeded(
      await runLocalRedrive({
        template: standard,
        sqsEndpoint,
        queueUrls,
        input: { fix: { set: { EmitterType: 'SYSTEM', 'Data.currency': 'EUR' } } },
      }),
    );

    // Assess: counts and what stayed
    expect(report.counts).toEqual({
      received: 4,
      redriven: 3,
      wouldRedrive: 0,
      stillRejected: 1,
      skippedByFilter: 0,
      heldBack: 0,
      sendFailed: 0,
      deleteFailed: 0,
      arrivedDuringRun: 0,
    });
    expect(report.stoppedBecause).toBe('queueEmpty');
    expect(report.hiddenUntil).toBeNull();
    expect(report.stayed).toEqual([
      {
        messageId: unfixable,
        ID: 'order-3',
        outcome: 'stillRejected',
        reason: 'SchemaViolation',
        detail: 'EventType: "order placed" must be upper snake case like EVENT_EXAMPLE',
      },
    ]);
    expect(report.stayedVisibleAgain).toBe('now: made visible again at the end of the run');
    // The source queue has the fixed events, counted and traced back to the DLQ message
    const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
    const byId = new Map(sent.map((message) => [JSON.parse(message.Body!).ID as string, message]));
    expect([...byId.keys()].sort()).toEqual(['order-1', 'order-2', 'order-4']);
    expect(JSON.parse(byId.get('order-1')!.Body!)).toEqual(
      event({ ID: 'order-1', Data: { total: 12, currency: 'EUR' }, EmitterType: 'SYSTEM' }),
    );
    expect(byId.get('order-1')!.MessageAttributes).toEqual({
      [MessageAttributeNames.redriveCount]: { DataType: 'Number', StringValue: '1' },
      [MessageAttributeNames.redrivenFrom]: { DataType: 'String', StringValue: fixable1 },
    });
    expect(byId.get('order-2')!.MessageAttributes?.[MessageAttributeNames.redrivenFrom]?.StringValue).toBe(fixable2);
    expect(byId.get('order-4')!.MessageAttributes).toEqual({
      [MessageAttributeNames.redriveCount]: { DataType: 'Number', StringValue: '1' },
      [MessageAttributeNames.redrivenFrom]: { DataType: 'String', StringValue: native },
    });
    // Only the unfixable one is left in the DLQ, visible again at once
    const left = await drainQueue(sqs, queueUrls.deadLetter);
    expect(left.map((message) => message.MessageId)).toEqual([unfixable]);
  });

  it('changes nothing it was not asked to: no fix sends the body byte for byte; a fix changes only its fields', async () => {
    // Prepare: white space, 1.50, escapes, a literal a double cannot hold, an exponent
    const queueUrls = await createRedriveQueues(sqs, false);
    const data =
      '"Data": {"amountMinor": 12345678901234567890, "price": 1.50, "tiny": 1E-7, "note": "caf\\u00e9 \\/ \\"q\\"", "none": null}';
    const asIs = `{ "Timestamp": 1596719980, "EventType": "ORDER_PLACED", "ID": "bytes-1", "EmitterId": "c", "EmitterType": "SYSTEM", ${data} }`;
    const toFix = `{ "Timestamp": 1596719980.0, "EventType": "ORDER_PLACED", "ID": "bytes-2", "EmitterId": "c", "EmitterType": "", "Legacy": true, ${data} }`;
    await deadLetter(sqs, queueUrls.deadLetter, asIs);
    const plain = succeeded(await runLocalRedrive({ template: standard, sqsEndpoint, queueUrls, input: {} }));
    const sentAsIs = await drainQueue(sqs, queueUrls.source, { delete: true });
    await drainQueue(sqs, queueUrls.deadLetter, { delete: true });
    await deadLetter(sqs, queueUrls.deadLetter, toFix);

    // Act
    const fixed = succeeded(
      await runLocalRedrive({
        template: standard,
        sqsEndpoint,
        queueUrls,
        input: { fix: { set: { EmitterType: 'SYSTEM' }, remove: ['Legacy'] } },
      }),
    );

    // Assess: byte for byte without a fix; with one, only white space between tokens goes
    expect(plain.counts).toMatchObject({ redriven: 1 });
    expect(sentAsIs.map((message) => message.Body)).toEqual([asIs]);
    expect(fixed.counts).toMatchObject({ redriven: 1 });
    const sentFixed = await drainQueue(sqs, queueUrls.source, { delete: true });
    expect(sentFixed.map((message) => message.Body)).toEqual([
      '{"Timestamp":1596719980.0,"EventType":"ORDER_PLACED","ID":"bytes-2","EmitterId":"c","EmitterType":"SYSTEM",' +
        '"Data":{"amountMinor":12345678901234567890,"price":1.50,"tiny":1E-7,"note":"caf\\u00e9 \\/ \\"q\\"","none":null}}',
    ]);
  });

  it('dryRun reports what would happen and leaves both queues exactly as they were', async () => {
    // Prepare
    const queueUrls = await createRedriveQueues(sqs, false);
    const { EmitterType: _a, ...withoutEmitter } = event({ ID: 'dry-1' });
    const fixable = await deadLetter(sqs, queueUrls.deadLetter, withoutEmitter, {
      attributes: rejection('SchemaViolation', 'EmitterType: required field is missing'),
    });
    const notJson = await deadLetter(sqs, queueUrls.deadLetter, '{"ID": "dry-2",', {
      attributes: rejection('InvalidJson', 'body: not JSON'),
    });

    // Act
    const report = succeeded(
      await runLocalRedrive({
        template: standard,
        sqsEndpoint,
        queueUrls,
        input: { dryRun: true, fix: { set: { EmitterType: 'SYSTEM' } } },
      }),
    );

    // Assess
    expect(report.dryRun).toBe(true);
    expect(report.counts).toMatchObject({ received: 2, redriven: 0, wouldRedrive: 1, stillRejected: 1 });
    expect(report.stayed).toEqual(
      expect.arrayContaining([
        { messageId: fixable, ID: 'dry-1', outcome: 'wouldRedrive', reason: 'DryRun', detail: null },
        {
          messageId: notJson,
          ID: null,
          outcome: 'stillRejected',
          reason: 'InvalidJson',
          detail: expect.stringMatching(/^body: not JSON \(/),
        },
      ]),
    );
    expect(await drainQueue(sqs, queueUrls.source)).toEqual([]);
    const left = await drainQueue(sqs, queueUrls.deadLetter);
    expect(left.map((message) => message.MessageId).sort()).toEqual([fixable, notJson].sort());
    expect(
      left.find((message) => message.MessageId === fixable)?.MessageAttributes?.[MessageAttributeNames.rejectionReason]
        ?.StringValue,
    ).toBe('SchemaViolation');
  });

  it('FIFO dry run reads every stream whole, even one a full receive cut off, and leaves all visible', async () => {
    // Prepare: four streams of three (a receive of 10 holds three whole streams and one message of the fourth)
    const queueUrls = await createRedriveQueues(sqs, true);
    for (const stream of ['g1', 'g2', 'g3', 'g4']) {
      for (const step of [1, 2, 3])
        await deadLetter(sqs, queueUrls.deadLetter, event({ ID: stream, EventId: `${stream}-${step}` }), {
          group: stream,
        });
    }

    // Act
    const report = succeeded(
      await runLocalRedrive({ template: fifo, sqsEndpoint, queueUrls, input: { dryRun: true } }),
    );

    // Assess
    expect(report.counts).toMatchObject({ received: 12, wouldRedrive: 12, redriven: 0 });
    const left = await drainQueue(sqs, queueUrls.deadLetter, { delete: true });
    expect(left.map((message) => JSON.parse(message.Body!).EventId)).toEqual(
      ['g1', 'g2', 'g3', 'g4'].flatMap((stream) => [1, 2, 3].map((step) => `${stream}-${step}`)),
    );
  });

  it('filter redrives only the matching messages', async () => {
    // Prepare
    const queueUrls = await createRedriveQueues(sqs, false);
    const { EmitterType: _a, ...placed } = event({ ID: 'filter-1', EventType: 'ORDER_PLACED' });
    const { EmitterType: _b, ...shipped } = event({ ID: 'filter-2', EventType: 'ORDER_SHIPPED' });
    const missing = rejection('SchemaViolation', 'EmitterType: required field is missing');
    await deadLetter(sqs, queueUrls.deadLetter, placed, { attributes: missing });
    const other = await deadLetter(sqs, queueUrls.deadLetter, shipped, { attributes: missing });

    // Act
    const report = succeeded(
      await runLocalRedrive({
        template: standard,
        sqsEndpoint,
        queueUrls,
        input: { filter: { EventType: 'ORDER_PLACED' }, fix: { set: { EmitterType: 'SYSTEM' } } },
      }),
    );

    // Assess
    expect(report.counts).toMatchObject({ received: 2, redriven: 1, skippedByFilter: 1, stillRejected: 0 });
    expect(report.stayed).toEqual([
      {
        messageId: other,
        ID: 'filter-2',
        outcome: 'skippedByFilter',
        reason: 'NotMatchedByFilter',
        detail: 'the event does not match the filter',
      },
    ]);
    const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
    expect(sent.map((message) => JSON.parse(message.Body!).ID)).toEqual(['filter-1']);
    expect((await drainQueue(sqs, queueUrls.deadLetter)).map((message) => message.MessageId)).toEqual([other]);
  });

  it('groups: a fix addresses one event (Events.1.EmitterType) and the whole group is validated again; a filter matches a group by its events', async () => {
    // Prepare: four dead letters missing an EmitterType. group-1's second event (its values
    // written by hand: 12.50 and a literal a double cannot hold); group-2 has one event, so
    // Events.1 names nothing; group-3 misses it in both events; single-4 is ORDER_SHIPPED.
    const queueUrls = await createRedriveQueues(sqs, false);
    const missing = rejection('SchemaViolation', 'Events[1].EmitterType: required field is missing');
    const placed =
      '{"Timestamp":1596719980,"EventType":"ORDER_PLACED","EmitterId":"checkout","EmitterType":"SYSTEM","Data":{"total":12.50}}';
    const reserved =
      '{"Timestamp":1596719980,"EventType":"PAYMENT_RESERVED","EmitterId":"payments","Data":{"minor":12345678901234567890}}';
    const fixable = `{"ID":"group-1","ExpectedVersion":0,"Events":[${placed},${reserved}]}`;
    await deadLetter(sqs, queueUrls.deadLetter, fixable, { attributes: missing });
    const short = await deadLetter(sqs, queueUrls.deadLetter, `{"ID":"group-2","Events":[${reserved}]}`, {
      attributes: missing,
    });
    const both = await deadLetter(
      sqs,
      queueUrls.deadLetter,
      `{"ID":"group-3","Events":[${placed.replace(',"EmitterType":"SYSTEM"', '')},${reserved}]}`,
      { attributes: missing },
    );
    const { EmitterType: _a, ...shipped } = event({ ID: 'single-4', EventType: 'ORDER_SHIPPED' });
    const single = await deadLetter(sqs, queueUrls.deadLetter, shipped, { attributes: missing });

    // Act
    const report = succeeded(
      await runLocalRedrive({
        template: standard,
        sqsEndpoint,
        queueUrls,
        input: { filter: { EventType: 'PAYMENT_RESERVED' }, fix: { set: { 'Events.1.EmitterType': 'SYSTEM' } } },
      }),
    );

    // Assess: only group-1 went back, with only that field changed
    expect(report.counts).toMatchObject({ received: 4, redriven: 1, stillRejected: 2, skippedByFilter: 1 });
    const stayed = new Map(report.stayed.map((entry) => [entry.messageId, entry]));
    expect(stayed.get(short)).toEqual({
      messageId: short,
      ID: 'group-2',
      outcome: 'stillRejected',
      reason: 'FixNotApplicable',
      detail: 'fix.set: "Events.1.EmitterType" names Events[1], but the group has 1 event (Events.0)',
    });
    expect(stayed.get(both)).toEqual({
      messageId: both,
      ID: 'group-3',
      outcome: 'stillRejected',
      reason: 'SchemaViolation',
      detail: 'Events[0].EmitterType: required field is missing',
    });
    expect(stayed.get(single)).toMatchObject({ ID: 'single-4', outcome: 'skippedByFilter' });
    const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
    expect(sent.map((message) => message.Body)).toEqual([
      fixable.replace(
        '"Data":{"minor":12345678901234567890}}',
        '"Data":{"minor":12345678901234567890},"EmitterType":"SYSTEM"}',
      ),
    ]);
    expect((await drainQueue(sqs, queueUrls.deadLetter)).map((message) => message.MessageId).sort()).toEqual(
      [short, both, single].sort(),
    );
  });

  it("FIFO groups: a fix of a group's events sends the group back; the single event after it, which has no Events, stays (FixNotApplicable)", async () => {
    // Prepare: the group's first event has a field the contract does not know; the single event after it is valid as it is
    const queueUrls = await createRedriveQueues(sqs, true);
    const group = JSON.stringify({
      ID: 'fifo-groups',
      Events: [
        { Timestamp: 1596719980, EventType: 'ORDER_PLACED', EmitterId: 'checkout', EmitterType: 'SYSTEM', Legacy: 1 },
        { Timestamp: 1596719980, EventType: 'PAYMENT_RESERVED', EmitterId: 'payments', EmitterType: 'SYSTEM' },
      ],
    });
    const groupId = await deadLetter(sqs, queueUrls.deadLetter, group, {
      attributes: rejection('SchemaViolation', 'Events[0].Legacy: unknown field'),
      group: 'fifo-groups',
    });
    const after = JSON.stringify(event({ ID: 'fifo-groups', EventId: 'after-the-group' }));
    const afterId = await deadLetter(sqs, queueUrls.deadLetter, after, { group: 'fifo-groups' });

    // Act: remove Events.0.Legacy and set a field in Events.1, which a single event does not have
    const report = succeeded(
      await runLocalRedrive({
        template: fifo,
        sqsEndpoint,
        queueUrls,
        input: { fix: { remove: ['Events.0.Legacy'], set: { 'Events.1.Data.currency': 'EUR' } } },
      }),
    );

    // Assess: the single event has no Events.1: it stays, after the group went back
    expect(report.counts).toMatchObject({ received: 2, redriven: 1, stillRejected: 1, heldBack: 0 });
    expect(report.stayed).toEqual([
      expect.objectContaining({ messageId: afterId, outcome: 'stillRejected', reason: 'FixNotApplicable' }),
    ]);
    const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
    expect(sent.map((message) => JSON.parse(message.Body!) as unknown)).toEqual([
      {
        ID: 'fifo-groups',
        Events: [
          { Timestamp: 1596719980, EventType: 'ORDER_PLACED', EmitterId: 'checkout', EmitterType: 'SYSTEM' },
          {
            Timestamp: 1596719980,
            EventType: 'PAYMENT_RESERVED',
            EmitterId: 'payments',
            EmitterType: 'SYSTEM',
            Data: { currency: 'EUR' },
          },
        ],
      },
    ]);
    expect(sent[0]?.Attributes).toMatchObject({
      MessageGroupId: 'fifo-groups',
      MessageDeduplicationId: `redrive-${groupId}`,
    });
  });

  it('FIFO: three rejected events of one stream come back in their order, with a fresh deduplication id', async () => {
    // Prepare
    const queueUrls = await createRedriveQueues(sqs, true);
    const ids: string[] = [];
    for (const step of [1, 2, 3]) {
      const { EmitterType: _a, ...body } = event({ ID: 'fifo-stream', EventId: `step-${step}` });
      ids.push(
        await deadLetter(sqs, queueUrls.deadLetter, body, {
          attributes: rejection('SchemaViolation', 'EmitterType: required field is missing'),
          group: 'fifo-stream',
        }),
      );
    }

    // Act
    const report = succeeded(
      await runLocalRedrive({
        template: fifo,
        sqsEndpoint,
        queueUrls,
        input: { fix: { set: { EmitterType: 'SYSTEM' } } },
      }),
    );

    // Assess
    expect(report.counts).toMatchObject({ received: 3, redriven: 3, stillRejected: 0 });
    const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
    expect(sent.map((message) => JSON.parse(message.Body!).EventId)).toEqual(['step-1', 'step-2', 'step-3']);
    expect(sent.map((message) => message.Attributes?.['MessageGroupId'])).toEqual([
      'fifo-stream',
      'fifo-stream',
      'fifo-stream',
    ]);
    expect(sent.map((message) => message.Attributes?.['MessageDeduplicationId'])).toEqual(
      ids.map((id) => `redrive-${id}`),
    );
    expect(await drainQueue(sqs, queueUrls.deadLetter)).toEqual([]);
  });

  it('FIFO: a message that stays holds back the later messages of its stream, which stay in order', async () => {
    // Prepare: one stream of three; the second cannot be fixed. The local SQS returns all three
    // in one receive, as SQS does.
    const queueUrls = await createRedriveQueues(sqs, true);
    const ids: string[] = [];
    for (const [step, type] of [
      [1, 'ORDER_PLACED'],
      [2, 'order placed'],
      [3, 'ORDER_PLACED'],
    ] as const) {
      const { EmitterType: _a, ...body } = event({ ID: 'held', EventId: `step-${step}`, EventType: type });
      ids.push(await deadLetter(sqs, queueUrls.deadLetter, body, { group: 'held' }));
    }

    // Act
    const report = succeeded(
      await runLocalRedrive({
        template: fifo,
        sqsEndpoint,
        queueUrls,
        input: { fix: { set: { EmitterType: 'SYSTEM' } } },
      }),
    );

    // Assess: the first went back; the second stayed; the third was held back behind it
    expect(report.counts).toMatchObject({ received: 3, redriven: 1, stillRejected: 1, heldBack: 1 });
    expect(report.stayed).toEqual([
      expect.objectContaining({ messageId: ids[1], ID: 'held', outcome: 'stillRejected', reason: 'SchemaViolation' }),
      {
        messageId: ids[2],
        ID: 'held',
        outcome: 'heldBack',
        reason: 'EarlierMessageStayed',
        detail: `message ${ids[1]} of this stream stayed in the DLQ`,
      },
    ]);
    const sent = await drainQueue(sqs, queueUrls.source, { delete: true });
    expect(sent.map((message) => JSON.parse(message.Body!).EventId)).toEqual(['step-1']);
    expect((await drainQueue(sqs, queueUrls.deadLetter)).map((message) => message.MessageId)).toEqual([ids[1], ids[2]]);
  });

  it('a send that fails leaves the message in the DLQ and says so', async () => {
    // Prepare: fauxqs cannot fail a send on demand, so this test injects the fault with
    // middleware on a real client.
    const queueUrls = await createRedriveQueues(sqs, false);
    const failing = await deadLetter(sqs, queueUrls.deadLetter, event({ ID: 'send-fails' }));
    await deadLetter(sqs, queueUrls.deadLetter, event({ ID: 'sent' }));
    const faulty = sqsClient();
    faulty.middlewareStack.add(
      (next, context) => async (args) => {
        const body = (args.input as { MessageBody?: string }).MessageBody ?? '';
        if (context.commandName === 'SendMessageCommand' && body.includes('send-fails')) {
          throw Object.assign(new Error('The KMS key is disabled'), { name: 'KmsDisabled' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'injectSendFault' },
    );

    // Act
    let report: RedriveReport;
    try {
      report = succeeded(
        await runLocalRedrive({ template: standard, sqsEndpoint, queueUrls, input: {}, sqsClient: faulty }),
      );
    } finally {
      faulty.destroy();
    }

    // Assess
    expect(report.counts).toMatchObject({ received: 2, redriven: 1, sendFailed: 1 });
    expect(report.stayed).toEqual([
      {
        messageId: failing,
        ID: 'send-fails',
        outcome: 'sendFailed',
        reason: 'SendFailed',
        detail: 'KmsDisabled: The KMS key is disabled',
      },
    ]);
    expect(
      (await drainQueue(sqs, queueUrls.source, { delete: true })).map((message) => JSON.parse(message.Body!).ID),
    ).toEqual(['sent']);
    expect((await drainQueue(sqs, queueUrls.deadLetter)).map((message) => message.MessageId)).toEqual([failing]);
  });

  it('a delete that fails after the send is reported as deleteFailed: the event is in both queues', async () => {
    // Prepare: fauxqs cannot fail a delete on demand; middleware on a real client does.
    const queueUrls = await createRedriveQueues(sqs, false);
    const stuck = await deadLetter(sqs, queueUrls.deadLetter, event({ ID: 'delete-fails' }));
    const faulty = sqsClient();
    faulty.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteMessageBatchCommand') {
          throw Object.assign(new Error('Access to the resource is denied'), { name: 'AccessDenied' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'injectDeleteFault' },
    );

    // Act
    let report: RedriveReport;
    try {
      report = succeeded(
        await runLocalRedrive({ template: standard, sqsEndpoint, queueUrls, input: {}, sqsClient: faulty }),
      );
    } finally {
      faulty.destroy();
    }

    // Assess
    expect(report.counts).toMatchObject({ received: 1, redriven: 0, deleteFailed: 1 });
    expect(report.stayed).toEqual([
      {
        messageId: stuck,
        ID: 'delete-fails',
        outcome: 'deleteFailed',
        reason: 'DeleteFailed',
        detail: 'AccessDenied: Access to the resource is denied',
      },
    ]);
    expect(await drainQueue(sqs, queueUrls.source, { delete: true })).toHaveLength(1);
    expect((await drainQueue(sqs, queueUrls.deadLetter)).map((message) => message.MessageId)).toEqual([stuck]);
  });

  it('maxMessages stops the loop', async () => {
    // Prepare
    const queueUrls = await createRedriveQueues(sqs, false);
    for (const n of [1, 2, 3, 4, 5]) await deadLetter(sqs, queueUrls.deadLetter, event({ ID: `max-${n}` }));

    // Act
    const report = succeeded(
      await runLocalRedrive({ template: standard, sqsEndpoint, queueUrls, input: { maxMessages: 2, batchSize: 1 } }),
    );

    // Assess
    expect(report.counts).toMatchObject({ received: 2, redriven: 2 });
    expect(report.stoppedBecause).toBe('maxMessages');
    expect(await drainQueue(sqs, queueUrls.source, { delete: true })).toHaveLength(2);
    expect(await drainQueue(sqs, queueUrls.deadLetter)).toHaveLength(3);
  });

  it('{} on an empty DLQ ends at once with zero counts', async () => {
    // Prepare
    const queueUrls = await createRedriveQueues(sqs, true);

    // Act
    const report = succeeded(await runLocalRedrive({ template: fifo, sqsEndpoint, queueUrls, input: {} }));

    // Assess
    expect(report.counts.received).toBe(0);
    expect(report.stoppedBecause).toBe('queueEmpty');
    expect(report.stayedVisibleAgain).toBe('now: nothing stayed');
  });

  it('invalid input fails the execution at once with InvalidRedriveInput and the reason', async () => {
    // Prepare
    const queueUrls = await createRedriveQueues(sqs, false);
    await deadLetter(sqs, queueUrls.deadLetter, event());

    // Act
    const result = await runLocalRedrive({
      template: standard,
      sqsEndpoint,
      queueUrls,
      input: { maxMessages: -1, fix: { rename: {} } },
    });

    // Assess
    expect(result).toMatchObject({
      status: 'FAILED',
      error: 'InvalidRedriveInput',
      cause:
        'Invalid redrive input: maxMessages: must be at least 1; fix.rename: unknown key; allowed are "set", "setJson" and "remove"',
    });
    expect(await drainQueue(sqs, queueUrls.deadLetter)).toHaveLength(1);
  });
});
