import { appendFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOCAL_REGION } from '../../../local/defaults.ts';
import type { TemplateJson } from './template-diff.ts';

/**
 * A stand-in for the few AWS APIs that docs/OPERATIONS.md's manual commands call, so that the
 * real AWS CLI (awscli, on this project's machines) can run those commands as written, against
 * 127.0.0.1 (there is no AWS account here). It answers from a "deployed" stack made of a
 * synthesized template, and models what the commands depend on, as AWS documents it:
 *
 * - CloudFormation `ListStackResources` pages of 100 (the CLI follows `NextToken`), and
 *   `DescribeStackResources`, which returns "only the first 100 resources";
 * - Lambda `ListEventSourceMappings` (by function), `DeleteEventSourceMapping`, after which the
 *   mapping "enters a Deleting state and might not be completely deleted for several seconds"
 *   (here: the next `GetEventSourceMapping` still finds it, Deleting), and `GetEventSourceMapping`;
 * - CloudFormation `DescribeStackEvents`, DynamoDB `Scan`, `UpdateTable`, `DescribeTable`, `DeleteTable`.
 *
 * Every call it answers is appended, one line each, to `log` (the file the fake `npx` and `sleep`
 * of the test write to as well), so a test reads the order of everything that happened.
 */

export const FAKE_ACCOUNT = '111122223333';
/** The CLI's region in the tests: any region does; the local mode's is at hand. */
export const FAKE_REGION = LOCAL_REGION;

/** One resource of the deployed stack. */
export interface DeployedResource {
  readonly logicalId: string;
  readonly type: string;
  readonly physicalId: string;
  readonly status: string;
}

/** An event source mapping as Lambda holds it. */
export interface DeployedMapping {
  readonly uuid: string;
  readonly functionName: string;
  readonly eventSourceArn: string;
  readonly startingPosition?: string;
}

export interface FakeAwsState {
  readonly stackName: string;
  readonly resources: DeployedResource[];
  readonly mappings: DeployedMapping[];
  /** Table name -> item count. */
  readonly tables: Map<string, number>;
}

/** Deterministic physical ids for a template's resources, and the mappings Lambda holds for them. */
export function deployedState(stackName: string, template: TemplateJson, status = 'CREATE_COMPLETE'): FakeAwsState {
  const physical = new Map<string, string>();
  Object.entries(template.Resources).forEach(([id, resource], index) => {
    physical.set(id, physicalId(stackName, id, resource, index));
  });
  const resources = Object.entries(template.Resources).map(([logicalId, resource]) => ({
    logicalId,
    type: resource.Type,
    physicalId: physical.get(logicalId)!,
    status,
  }));
  const mappings = resources
    .filter((resource) => resource.type === 'AWS::Lambda::EventSourceMapping')
    .map((resource) => {
      const properties = template.Resources[resource.logicalId]!.Properties ?? {};
      const position = properties['StartingPosition'];
      return {
        uuid: resource.physicalId,
        functionName: physical.get(refOf(properties['FunctionName']))!,
        eventSourceArn: sourceArn(template, physical, properties['EventSourceArn']),
        ...(typeof position === 'string' ? { startingPosition: position } : {}),
      };
    });
  const tables = new Map(
    resources.filter((resource) => resource.type === 'AWS::DynamoDB::Table').map((table) => [table.physicalId, 0]),
  );
  return { stackName, resources, mappings, tables };
}

function physicalId(stack: string, id: string, resource: TemplateJson['Resources'][string], index: number): string {
  const suffix = index.toString(16).padStart(12, '0');
  if (resource.Type === 'AWS::Lambda::EventSourceMapping') return `00000000-0000-4000-8000-${suffix}`;
  const name = `${stack}-${id}-${suffix.toUpperCase()}`;
  if (resource.Type === 'AWS::SQS::Queue') {
    const fifo = resource.Properties?.['FifoQueue'] === true ? '.fifo' : '';
    return `https://sqs.${FAKE_REGION}.amazonaws.com/${FAKE_ACCOUNT}/${name}${fifo}`;
  }
  return name;
}

function refOf(value: unknown): string {
  const ref = (value as { Ref?: unknown } | undefined)?.Ref;
  if (typeof ref !== 'string') throw new Error(`expected a Ref, got ${JSON.stringify(value)}`);
  return ref;
}

/** The ARN a mapping's `EventSourceArn` (a GetAtt of a queue's Arn or a table's StreamArn) resolves to. */
function sourceArn(template: TemplateJson, physical: Map<string, string>, value: unknown): string {
  const [id, attribute] = (value as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'];
  const name = physical.get(id)!;
  if (template.Resources[id]?.Type === 'AWS::SQS::Queue') {
    return `arn:aws:sqs:${FAKE_REGION}:${FAKE_ACCOUNT}:${name.slice(name.lastIndexOf('/') + 1)}`;
  }
  if (attribute === 'StreamArn') {
    return `arn:aws:dynamodb:${FAKE_REGION}:${FAKE_ACCOUNT}:table/${name}/stream/2026-01-01T00:00:00.000`;
  }
  throw new Error(`unexpected event source ${JSON.stringify(value)}`);
}

/** The fake endpoint, listening on 127.0.0.1; `close()` stops it. */
export interface FakeAws {
  readonly url: string;
  readonly state: FakeAwsState;
  close(): Promise<void>;
}

export async function startFakeAws(state: FakeAwsState, log: string): Promise<FakeAws> {
  const deleting = new Set<string>();
  const record = (line: string) => appendFileSync(log, `${line}\n`);
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      try {
        route({ state, deleting, record }, request, body, response);
      } catch (error) {
        record(`FAKE ERROR ${String(error)}`);
        reply(response, 500, 'application/json', JSON.stringify({ __type: 'InternalFailure', message: String(error) }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

interface Context {
  readonly state: FakeAwsState;
  readonly deleting: Set<string>;
  readonly record: (line: string) => void;
}

function reply(response: ServerResponse, status: number, type: string, body: string, headers = {}): void {
  response.writeHead(status, { 'content-type': type, ...headers });
  response.end(body);
}

function route(context: Context, request: IncomingMessage, body: string, response: ServerResponse): void {
  const path = new URL(request.url ?? '/', 'http://fake').pathname;
  const target = request.headers['x-amz-target'];
  if (path.startsWith('/2015-03-31/event-source-mappings')) {
    lambda(context, request, response);
  } else if (typeof target === 'string' && target.startsWith('DynamoDB_20120810.')) {
    dynamodb(context, target.slice('DynamoDB_20120810.'.length), JSON.parse(body) as { TableName?: unknown }, response);
  } else {
    cloudFormation(context, new URLSearchParams(body), response);
  }
}

// --- Lambda (REST, JSON) ------------------------------------------------------------------

function lambda(context: Context, request: IncomingMessage, response: ServerResponse): void {
  const url = new URL(request.url ?? '/', 'http://fake');
  const uuid = decodeURIComponent(url.pathname.split('/')[3] ?? '');
  const json = (status: number, value: unknown, headers = {}) =>
    reply(response, status, 'application/json', JSON.stringify(value), headers);
  const notFound = () =>
    json(
      404,
      { Type: 'User', Message: `The resource you requested does not exist. (${uuid})` },
      { 'x-amzn-errortype': 'ResourceNotFoundException' },
    );
  const mapping = context.state.mappings.find((each) => each.uuid === uuid);
  const view = (each: DeployedMapping, state: string) => ({
    UUID: each.uuid,
    EventSourceArn: each.eventSourceArn,
    FunctionArn: `arn:aws:lambda:${FAKE_REGION}:${FAKE_ACCOUNT}:function:${each.functionName}`,
    ...(each.startingPosition ? { StartingPosition: each.startingPosition } : {}),
    State: state,
  });
  if (request.method === 'GET' && uuid === '') {
    const fn = url.searchParams.get('FunctionName');
    context.record(`lambda ListEventSourceMappings ${fn}`);
    const found = context.state.mappings.filter((each) => each.functionName === fn);
    json(200, {
      EventSourceMappings: found.map((each) => view(each, context.deleting.has(each.uuid) ? 'Deleting' : 'Enabled')),
    });
  } else if (request.method === 'DELETE') {
    context.record(`lambda DeleteEventSourceMapping ${uuid} -> ${mapping ? 'Deleting' : 'not found'}`);
    if (!mapping) return notFound();
    context.deleting.add(uuid);
    json(202, view(mapping, 'Deleting'));
  } else if (request.method === 'GET') {
    if (mapping && context.deleting.has(uuid)) {
      // Still there, Deleting, for this one read; gone at the next.
      context.state.mappings.splice(context.state.mappings.indexOf(mapping), 1);
      context.record(`lambda GetEventSourceMapping ${uuid} -> Deleting`);
      return json(200, view(mapping, 'Deleting'));
    }
    context.record(`lambda GetEventSourceMapping ${uuid} -> ${mapping ? 'Enabled' : 'not found'}`);
    return mapping ? json(200, view(mapping, 'Enabled')) : notFound();
  } else {
    throw new Error(`unexpected Lambda call ${request.method} ${url.pathname}`);
  }
}

// --- DynamoDB (JSON 1.0) ------------------------------------------------------------------

function dynamodb(context: Context, operation: string, input: { TableName?: unknown }, response: ServerResponse) {
  const table = String(input.TableName);
  const json = (status: number, value: unknown) =>
    reply(response, status, 'application/x-amz-json-1.0', JSON.stringify(value));
  const count = context.state.tables.get(table);
  context.record(`dynamodb ${operation} ${JSON.stringify(input)}`);
  if (count === undefined) {
    return json(400, { __type: 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException', message: table });
  }
  if (operation === 'Scan') return json(200, { Count: count, ScannedCount: count });
  if (operation === 'DescribeTable') return json(200, { Table: { TableName: table, TableStatus: 'ACTIVE' } });
  if (operation === 'UpdateTable') return json(200, { TableDescription: { TableName: table } });
  if (operation === 'DeleteTable') {
    context.state.tables.delete(table);
    return json(200, { TableDescription: { TableName: table, TableStatus: 'DELETING' } });
  }
  throw new Error(`unexpected DynamoDB operation ${operation}`);
}

// --- CloudFormation (query protocol, XML) -------------------------------------------------

const CFN_NS = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';
const PAGE = 100;

function xmlText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function element(name: string, value: string): string {
  return `<${name}>${xmlText(value)}</${name}>`;
}

function cloudFormation(context: Context, form: URLSearchParams, response: ServerResponse): void {
  const action = form.get('Action') ?? '';
  const { state } = context;
  context.record(`cloudformation ${action} ${form.get('StackName')} ${form.get('NextToken') ?? ''}`.trimEnd());
  if (form.get('StackName') !== state.stackName) throw new Error(`no stack ${form.get('StackName')}`);
  const when = element('Timestamp', '2026-01-01T00:00:00Z');
  const resource = (each: DeployedResource) =>
    element('LogicalResourceId', each.logicalId) +
    element('PhysicalResourceId', each.physicalId) +
    element('ResourceType', each.type) +
    element('ResourceStatus', each.status);
  let result: string;
  if (action === 'ListStackResources') {
    const start = Number(form.get('NextToken') ?? '0');
    const page = state.resources.slice(start, start + PAGE);
    const next = start + PAGE < state.resources.length ? element('NextToken', String(start + PAGE)) : '';
    const members = page.map(
      (each) => `<member>${resource(each)}${when.replace(/Timestamp/g, 'LastUpdatedTimestamp')}</member>`,
    );
    result = `<StackResourceSummaries>${members.join('')}</StackResourceSummaries>${next}`;
  } else if (action === 'DescribeStackResources') {
    const stack = element('StackName', state.stackName);
    const members = state.resources.slice(0, PAGE).map((each) => `<member>${stack}${resource(each)}${when}</member>`);
    result = `<StackResources>${members.join('')}</StackResources>`;
  } else if (action === 'DescribeStackEvents') {
    const failed = state.resources.filter((each) => each.status.endsWith('FAILED'));
    const members = failed.map(
      (each, index) =>
        `<member>${element('StackId', state.stackName)}${element('EventId', String(index))}${element('StackName', state.stackName)}` +
        `${resource(each)}${when}${element('ResourceStatusReason', 'Table cannot be deleted: deletion protection is enabled')}</member>`,
    );
    result = `<StackEvents>${members.join('')}</StackEvents>`;
  } else {
    throw new Error(`unexpected CloudFormation action ${action}`);
  }
  reply(
    response,
    200,
    'text/xml',
    `<${action}Response xmlns="${CFN_NS}"><${action}Result>${result}</${action}Result>` +
      `<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></${action}Response>`,
  );
}
