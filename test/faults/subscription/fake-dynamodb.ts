import {
  ConditionalCheckFailedException,
  TransactionCanceledException,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';

/**
 * An in-memory stand-in for the DynamoDB requests the subscription adapter
 * (adapters/dynamodb-subscription.ts) makes, for the subscription fault explorer: thousands of
 * schedules need each request to cost microseconds, and the scheduler must decide when each
 * one takes effect. What it keeps of DynamoDB (the parts the adapter's correctness rests on):
 *
 * - every write is atomic and its `ConditionExpression` is evaluated against the item as stored
 *   (ConditionalCheckFailedException otherwise; TransactWriteItems all or nothing, with
 *   TransactionCanceledException and its reasons);
 * - `UpdateExpression` SET (with `if_not_exists`, `+`, `-`, `list_append`), ADD (numbers and
 *   sets), REMOVE and DELETE on top-level attributes; `ReturnValues` ALL_NEW / ALL_OLD;
 * - Query in sort-key order, at most `Limit` items and 1 MB a page, `LastEvaluatedKey`;
 *   Scan in a fixed hash order of partitions with each partition's items together (the replay
 *   relies on it), pages by `Limit`; `ProjectionExpression` of top-level names;
 * - consumed capacity as DynamoDB counts it: a strongly consistent read 1 unit per 4 KB (a Query
 *   or Scan page rounds its total up, a GetItem each item), a write 1 unit per 1 KB of the larger
 *   of the old and new item.
 *
 * Not kept: expression syntax errors are thrown as plain errors (a bug in the caller shows as a
 * failed schedule), nested document paths, secondary indexes, item size limits.
 */

export interface TableSchema {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey?: string;
}

type Item = Record<string, AttributeValue>;
type Names = Record<string, string> | undefined;
type Values = Record<string, AttributeValue> | undefined;

interface Table {
  readonly schema: TableSchema;
  /** Partition key text -> the partition's items, ordered by sort key. */
  readonly partitions: Map<string, Item[]>;
}

export interface Consumed {
  readonly table: string;
  readonly read: number;
  readonly write: number;
}

// ---------------------------------------------------------------------------------------------
// Values

function scalarText(value: AttributeValue | undefined): string {
  if (value === undefined) return '';
  if (value.S !== undefined) return `S:${value.S}`;
  if (value.N !== undefined) return `N:${Number(value.N)}`;
  if (value.B !== undefined) return `B:${Buffer.from(value.B).toString('base64')}`;
  return JSON.stringify(value);
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return byteLength(value.S);
  if (value.N !== undefined) return Math.ceil(value.N.replace(/^-/, '').replace(/^0+/, '').length / 2) + 1;
  if (value.B !== undefined) return value.B.length;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((sum, entry) => sum + byteLength(entry), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, entry) => sum + entry.length, 0);
  if (value.L !== undefined) return 3 + value.L.reduce((sum, entry) => sum + 1 + valueSize(entry), 0);
  if (value.M !== undefined)
    return 3 + Object.entries(value.M).reduce((sum, [key, entry]) => sum + 1 + byteLength(key) + valueSize(entry), 0);
  return 1;
}

const sizes = new WeakMap<Item, number>();

/** Stored items are never changed in place (a write stores a new object), so their size is kept. */
export function itemSize(item: Item | undefined): number {
  if (!item) return 0;
  let size = sizes.get(item);
  if (size === undefined) {
    size = Object.entries(item).reduce((sum, [key, value]) => sum + byteLength(key) + valueSize(value), 0);
    sizes.set(item, size);
  }
  return size;
}

function equal(a: AttributeValue | undefined, b: AttributeValue | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if (a.N !== undefined && b.N !== undefined) return Number(a.N) === Number(b.N);
  if (a.S !== undefined && b.S !== undefined) return a.S === b.S;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** -1, 0, 1, or undefined when the two cannot be ordered (then every comparison is false). */
function order(a: AttributeValue | undefined, b: AttributeValue | undefined): number | undefined {
  if (a === undefined || b === undefined) return undefined;
  if (a.N !== undefined && b.N !== undefined) return Math.sign(Number(a.N) - Number(b.N));
  if (a.S !== undefined && b.S !== undefined) return a.S < b.S ? -1 : a.S > b.S ? 1 : 0;
  return undefined;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

// ---------------------------------------------------------------------------------------------
// Expressions

type Token =
  | { kind: 'name'; text: string }
  | { kind: 'value'; text: string }
  | { kind: 'word'; text: string }
  | { kind: 'op'; text: string };

const tokenCache = new Map<string, Token[]>();

function tokenize(expression: string): Token[] {
  const cached = tokenCache.get(expression);
  if (cached) return cached;
  const tokens = tokenizeNow(expression);
  if (tokenCache.size < 10_000) tokenCache.set(expression, tokens);
  return tokens;
}

function tokenizeNow(expression: string): Token[] {
  const tokens: Token[] = [];
  const pattern = /\s*(?:(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|([A-Za-z_][A-Za-z0-9_]*)|(<>|<=|>=|[=<>(),+\-.[\]]))/y;
  let index = 0;
  while (index < expression.length) {
    if (/^\s*$/.test(expression.slice(index))) break;
    pattern.lastIndex = index;
    const match = pattern.exec(expression);
    if (!match)
      throw new Error(`fake DynamoDB: cannot read the expression at ${JSON.stringify(expression.slice(index))}`);
    index = pattern.lastIndex;
    if (match[1]) tokens.push({ kind: 'name', text: match[1] });
    else if (match[2]) tokens.push({ kind: 'value', text: match[2] });
    else if (match[3]) tokens.push({ kind: 'word', text: match[3] });
    else tokens.push({ kind: 'op', text: match[4]! });
  }
  return tokens;
}

class Parser {
  #position = 0;

  public constructor(
    private readonly tokens: Token[],
    private readonly names: Names,
    private readonly values: Values,
  ) {}

  public get done(): boolean {
    return this.#position >= this.tokens.length;
  }

  public peek(offset = 0): Token | undefined {
    return this.tokens[this.#position + offset];
  }

  public next(): Token {
    const token = this.tokens[this.#position];
    if (!token) throw new Error('fake DynamoDB: the expression ends too early');
    this.#position += 1;
    return token;
  }

  public isWord(text: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token?.kind === 'word' && token.text.toUpperCase() === text;
  }

  public isOp(text: string): boolean {
    const token = this.peek();
    return token?.kind === 'op' && token.text === text;
  }

  public expectOp(text: string): void {
    const token = this.next();
    if (token.kind !== 'op' || token.text !== text)
      throw new Error(`fake DynamoDB: expected ${text}, found ${token.text}`);
  }

  /** A top-level attribute name. */
  public path(): string {
    const token = this.next();
    let name: string;
    if (token.kind === 'name') {
      const resolved = this.names?.[token.text];
      if (resolved === undefined) throw new Error(`fake DynamoDB: ${token.text} is not in ExpressionAttributeNames`);
      name = resolved;
    } else if (token.kind === 'word') name = token.text;
    else throw new Error(`fake DynamoDB: expected an attribute name, found ${token.text}`);
    if (this.isOp('.') || this.isOp('[')) throw new Error('fake DynamoDB: nested paths are not modelled');
    return name;
  }

  public value(): AttributeValue {
    const token = this.next();
    const value = token.kind === 'value' ? this.values?.[token.text] : undefined;
    if (value === undefined) throw new Error(`fake DynamoDB: ${token.text} is not in ExpressionAttributeValues`);
    return value;
  }
}

/** An operand of a condition: an attribute of the item, a value, or size(path). */
function operand(parser: Parser, item: Item | undefined): AttributeValue | undefined {
  const token = parser.peek();
  if (token?.kind === 'value') return parser.value();
  if (parser.isWord('SIZE') && parser.peek(1)?.text === '(') {
    parser.next();
    parser.expectOp('(');
    const name = parser.path();
    const value = item?.[name];
    parser.expectOp(')');
    if (value === undefined) return undefined;
    const size =
      value.S !== undefined
        ? byteLength(value.S)
        : (value.SS?.length ?? value.NS?.length ?? value.L?.length ?? Object.keys(value.M ?? {}).length);
    return { N: String(size) };
  }
  const name = parser.path();
  return item?.[name];
}

function condition(parser: Parser, item: Item | undefined): boolean {
  let result = conjunction(parser, item);
  while (parser.isWord('OR')) {
    parser.next();
    const right = conjunction(parser, item);
    result = result || right;
  }
  return result;
}

function conjunction(parser: Parser, item: Item | undefined): boolean {
  let result = negation(parser, item);
  while (parser.isWord('AND')) {
    parser.next();
    const right = negation(parser, item);
    result = result && right;
  }
  return result;
}

function negation(parser: Parser, item: Item | undefined): boolean {
  if (parser.isWord('NOT')) {
    parser.next();
    return !negation(parser, item);
  }
  return primary(parser, item);
}

function primary(parser: Parser, item: Item | undefined): boolean {
  if (parser.isOp('(')) {
    parser.next();
    const result = condition(parser, item);
    parser.expectOp(')');
    return result;
  }
  const head = parser.peek();
  if (head?.kind === 'word' && parser.peek(1)?.text === '(' && !parser.isWord('SIZE')) {
    const fn = parser.next().text.toLowerCase();
    parser.expectOp('(');
    const name = parser.path();
    let result: boolean;
    if (fn === 'attribute_exists') result = item?.[name] !== undefined;
    else if (fn === 'attribute_not_exists') result = item?.[name] === undefined;
    else if (fn === 'begins_with' || fn === 'contains' || fn === 'attribute_type') {
      parser.expectOp(',');
      const argument = parser.value();
      const value = item?.[name];
      if (fn === 'begins_with')
        result = value?.S !== undefined && argument.S !== undefined && value.S.startsWith(argument.S);
      else if (fn === 'contains')
        result =
          (value?.S !== undefined && argument.S !== undefined && value.S.includes(argument.S)) ||
          (value?.SS !== undefined && argument.S !== undefined && value.SS.includes(argument.S)) ||
          (value?.L !== undefined && value.L.some((entry) => equal(entry, argument)));
      else result = value !== undefined && argument.S !== undefined && argument.S in value;
    } else throw new Error(`fake DynamoDB: function ${fn} is not modelled`);
    parser.expectOp(')');
    return result;
  }
  const left = operand(parser, item);
  if (parser.isWord('BETWEEN')) {
    parser.next();
    const low = operand(parser, item);
    if (!parser.isWord('AND')) throw new Error('fake DynamoDB: BETWEEN without AND');
    parser.next();
    const high = operand(parser, item);
    const a = order(left, low);
    const b = order(left, high);
    return a !== undefined && b !== undefined && a >= 0 && b <= 0;
  }
  if (parser.isWord('IN')) {
    parser.next();
    parser.expectOp('(');
    let found = false;
    for (;;) {
      if (equal(left, operand(parser, item))) found = true;
      if (parser.isOp(',')) parser.next();
      else break;
    }
    parser.expectOp(')');
    return found;
  }
  const op = parser.next();
  const right = operand(parser, item);
  switch (op.text) {
    case '=':
      return equal(left, right);
    case '<>':
      return left !== undefined && right !== undefined && !equal(left, right);
    case '<':
      return order(left, right) === -1;
    case '<=':
      return [-1, 0].includes(order(left, right) ?? 2);
    case '>':
      return order(left, right) === 1;
    case '>=':
      return [1, 0].includes(order(left, right) ?? -2);
    default:
      throw new Error(`fake DynamoDB: operator ${op.text} is not modelled`);
  }
}

export function evaluateCondition(
  expression: string | undefined,
  item: Item | undefined,
  names: Names,
  values: Values,
): boolean {
  if (!expression) return true;
  const parser = new Parser(tokenize(expression), names, values);
  const result = condition(parser, item);
  if (!parser.done) throw new Error(`fake DynamoDB: unexpected ${parser.peek()?.text} in ${expression}`);
  return result;
}

function addNumbers(a: AttributeValue, b: AttributeValue, sign: 1 | -1): AttributeValue {
  if (a.N === undefined || b.N === undefined) throw new Error('fake DynamoDB: + or - on a value that is not a number');
  return { N: String(Number(a.N) + sign * Number(b.N)) };
}

function setValue(parser: Parser, item: Item): AttributeValue {
  const single = (): AttributeValue => {
    if (parser.isWord('IF_NOT_EXISTS') && parser.peek(1)?.text === '(') {
      parser.next();
      parser.expectOp('(');
      const name = parser.path();
      parser.expectOp(',');
      const fallback = single();
      parser.expectOp(')');
      return item[name] ?? fallback;
    }
    if (parser.isWord('LIST_APPEND') && parser.peek(1)?.text === '(') {
      parser.next();
      parser.expectOp('(');
      const a = single();
      parser.expectOp(',');
      const b = single();
      parser.expectOp(')');
      return { L: [...(a.L ?? []), ...(b.L ?? [])] };
    }
    if (parser.peek()?.kind === 'value') return parser.value();
    const name = parser.path();
    const value = item[name];
    if (value === undefined)
      throw new ValidationError('The provided expression refers to an attribute that does not exist in the item');
    return value;
  };
  let value = single();
  while (parser.isOp('+') || parser.isOp('-')) {
    const sign = parser.next().text === '+' ? 1 : -1;
    value = addNumbers(value, single(), sign);
  }
  return value;
}

/** The update applied to a copy of `before` (all right-hand sides read the item as it was). */
export function applyUpdate(expression: string, before: Item, names: Names, values: Values): Item {
  const parser = new Parser(tokenize(expression), names, values);
  // Values are replaced, never changed in place: a shallow copy is enough.
  const after: Item = { ...before };
  while (!parser.done) {
    const clause = parser.next();
    const kind = clause.text.toUpperCase();
    for (;;) {
      const name = parser.path();
      if (kind === 'SET') {
        parser.expectOp('=');
        after[name] = clone(setValue(parser, before));
      } else if (kind === 'REMOVE') {
        delete after[name];
      } else if (kind === 'ADD') {
        const value = parser.value();
        const current = after[name];
        if (value.N !== undefined) after[name] = current ? addNumbers(current, value, 1) : clone(value);
        else if (value.SS !== undefined) after[name] = { SS: [...new Set([...(current?.SS ?? []), ...value.SS])] };
        else if (value.NS !== undefined) after[name] = { NS: [...new Set([...(current?.NS ?? []), ...value.NS])] };
        else throw new Error('fake DynamoDB: ADD of a value that is neither a number nor a set');
      } else if (kind === 'DELETE') {
        const value = parser.value();
        const current = after[name];
        if (current?.SS && value.SS) {
          const left = current.SS.filter((entry) => !value.SS!.includes(entry));
          if (left.length > 0) after[name] = { SS: left };
          else delete after[name];
        } else if (current?.NS && value.NS) {
          const left = current.NS.filter((entry) => !value.NS!.includes(entry));
          if (left.length > 0) after[name] = { NS: left };
          else delete after[name];
        }
      } else throw new Error(`fake DynamoDB: update clause ${clause.text} is not modelled`);
      if (parser.isOp(',')) parser.next();
      else break;
    }
  }
  return after;
}

function project(item: Item, expression: string | undefined, names: Names): Item {
  if (!expression) return item;
  const projected: Item = {};
  for (const part of expression.split(',')) {
    const token = part.trim();
    const name = token.startsWith('#') ? names?.[token] : token;
    if (name === undefined) throw new Error(`fake DynamoDB: ${token} is not in ExpressionAttributeNames`);
    if (item[name] !== undefined) projected[name] = item[name]!;
  }
  return projected;
}

export class ValidationError extends Error {
  public constructor(message: string) {
    super(message);
    this.name = 'ValidationException';
  }
}

// ---------------------------------------------------------------------------------------------
// The tables

const PAGE_BYTES = 1024 * 1024;

/** FNV-1a: the fixed "hash order" of partitions in a Scan. */
function hash(text: string): number {
  let value = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    value ^= text.charCodeAt(index);
    value = Math.imul(value, 0x01000193) >>> 0;
  }
  return value;
}

function readUnits(bytes: number, consistent: boolean): number {
  const units = Math.max(1, Math.ceil(bytes / 4096));
  return consistent ? units : units / 2;
}

function writeUnits(before: Item | undefined, after: Item | undefined): number {
  return Math.max(1, Math.ceil(Math.max(itemSize(before), itemSize(after)) / 1024));
}

/** What one request did: for the explorer's observers (which checkpoint items it wrote). */
export interface Applied {
  readonly table: string;
  readonly before: Item | undefined;
  readonly after: Item | undefined;
}

// The commands' inputs, as far as the fake reads them.
/* eslint-disable @typescript-eslint/no-explicit-any -- command inputs are the SDK's own shapes, read field by field */
type Input = { TableName?: string } & Record<string, any>;

export class FakeDynamoDb {
  readonly #tables = new Map<string, Table>();
  /** Observers of every write that took effect. */
  public onWrite: ((applied: Applied) => void) | undefined;
  /** Observers of the units each request consumed. */
  public onConsumed: ((consumed: Consumed) => void) | undefined;
  public requests = 0;

  public createTable(schema: TableSchema): void {
    this.#tables.set(schema.name, { schema, partitions: new Map() });
  }

  #table(name: string): Table {
    const table = this.#tables.get(name);
    if (!table) {
      const error = new Error(`Requested resource not found: Table: ${name} not found`);
      error.name = 'ResourceNotFoundException';
      throw error;
    }
    return table;
  }

  #keyOf(table: Table, item: Item): { pk: string; sk: AttributeValue | undefined } {
    const pk = item[table.schema.partitionKey];
    if (pk === undefined) throw new ValidationError('One of the required keys was not given a value');
    const sk = table.schema.sortKey ? item[table.schema.sortKey] : undefined;
    if (table.schema.sortKey && sk === undefined)
      throw new ValidationError('One of the required keys was not given a value');
    return { pk: scalarText(pk), sk };
  }

  #find(table: Table, key: Item): { list: Item[] | undefined; index: number } {
    const { pk, sk } = this.#keyOf(table, key);
    const list = table.partitions.get(pk);
    if (!list) return { list, index: -1 };
    if (!table.schema.sortKey) return { list, index: list.length > 0 ? 0 : -1 };
    const name = table.schema.sortKey;
    let low = 0;
    let high = list.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const side = order(list[middle]![name], sk) ?? 0;
      if (side === 0) return { list, index: middle };
      if (side < 0) low = middle + 1;
      else high = middle - 1;
    }
    return { list, index: -1 };
  }

  /**
   * The stored item, or undefined. Stored items are never changed in place: callers get the
   * stored object itself (the adapters under test only read what they receive).
   */
  public get(tableName: string, key: Item): Item | undefined {
    const table = this.#table(tableName);
    const { list, index } = this.#find(table, key);
    return list && index >= 0 ? list[index] : undefined;
  }

  /** Write (or delete, `after` undefined) without conditions; `after` is stored as given (never change it afterwards). */
  public store(tableName: string, key: Item, after: Item | undefined): void {
    const table = this.#table(tableName);
    const { pk, sk } = this.#keyOf(table, key);
    let list = table.partitions.get(pk);
    const { index } = this.#find(table, key);
    const before = list && index >= 0 ? list[index] : undefined;
    if (after === undefined) {
      if (list && index >= 0) list.splice(index, 1);
      if (list && list.length === 0) table.partitions.delete(pk);
    } else {
      if (!list) {
        list = [];
        table.partitions.set(pk, list);
      }
      if (index >= 0) list[index] = after;
      else if (!table.schema.sortKey) list.push(after);
      else {
        let at = list.length;
        while (at > 0 && (order(list[at - 1]![table.schema.sortKey], sk) ?? 0) > 0) at -= 1;
        list.splice(at, 0, after);
      }
    }
    this.onWrite?.({ table: tableName, before, after });
  }

  /** Every item of a table in Scan order. */
  public items(tableName: string): Item[] {
    const table = this.#table(tableName);
    return this.#ordered(table).flatMap(([, list]) => list);
  }

  #ordered(table: Table): [string, Item[]][] {
    return [...table.partitions].sort(([a], [b]) => hash(a) - hash(b) || (a < b ? -1 : a > b ? 1 : 0));
  }

  #consumed(table: string, read: number, write: number, input: Input): Record<string, unknown> {
    this.onConsumed?.({ table, read, write });
    return input['ReturnConsumedCapacity'] && input['ReturnConsumedCapacity'] !== 'NONE'
      ? { ConsumedCapacity: { TableName: table, CapacityUnits: read + write } }
      : {};
  }

  #conditionFailed(item: Item | undefined, input: Input): never {
    throw new ConditionalCheckFailedException({
      message: 'The conditional request failed',
      $metadata: { httpStatusCode: 400 },
      ...(input['ReturnValuesOnConditionCheckFailure'] === 'ALL_OLD' && item ? { Item: clone(item) } : {}),
    });
  }

  /** Check and compute one write; returns the item after it (undefined: deleted), or throws. */
  #prepare(
    kind: 'Put' | 'Update' | 'Delete' | 'ConditionCheck',
    input: Input,
  ): { before: Item | undefined; after: Item | undefined; key: Item } {
    const table = this.#table(input.TableName as string);
    const key: Item = kind === 'Put' ? (input['Item'] as Item) : (input['Key'] as Item);
    const { list, index } = this.#find(table, key);
    const before = list && index >= 0 ? list[index] : undefined;
    const names = input['ExpressionAttributeNames'] as Names;
    const values = input['ExpressionAttributeValues'] as Values;
    if (!evaluateCondition(input['ConditionExpression'] as string | undefined, before, names, values))
      this.#conditionFailed(before, input);
    if (kind === 'ConditionCheck') return { before, after: before, key };
    if (kind === 'Delete') return { before, after: undefined, key };
    if (kind === 'Put') return { before, after: clone(input['Item'] as Item), key };
    const start: Item = before ?? clone(key);
    const after = applyUpdate(input['UpdateExpression'] as string, start, names, values);
    for (const [name, value] of Object.entries(key))
      if (!equal(after[name], value)) throw new ValidationError('Cannot update attribute: it is part of the key');
    return { before, after, key };
  }

  #returnValues(input: Input, before: Item | undefined, after: Item | undefined): Record<string, unknown> {
    const wanted = input['ReturnValues'] as string | undefined;
    if (wanted === 'ALL_NEW' && after) return { Attributes: clone(after) };
    if (wanted === 'ALL_OLD' && before) return { Attributes: clone(before) };
    if (wanted === 'UPDATED_NEW' && after) return { Attributes: clone(after) };
    return {};
  }

  /** Execute one command (its class name and input) atomically. */
  public execute(command: string, input: Input): Record<string, unknown> {
    this.requests += 1;
    switch (command) {
      case 'GetItemCommand': {
        const table = input.TableName as string;
        const item = this.get(table, input['Key'] as Item);
        return {
          ...(item ? { Item: project(item, input['ProjectionExpression'], input['ExpressionAttributeNames']) } : {}),
          ...this.#consumed(table, readUnits(itemSize(item), input['ConsistentRead'] === true), 0, input),
        };
      }
      case 'BatchGetItemCommand': {
        const responses: Record<string, Item[]> = {};
        const consumed: { TableName: string; CapacityUnits: number }[] = [];
        for (const [table, request] of Object.entries(input['RequestItems'] as Record<string, Input>)) {
          const keys = request['Keys'] as Item[];
          if (keys.length > 100) throw new ValidationError('Too many items requested for the BatchGetItem call');
          let units = 0;
          responses[table] = [];
          for (const key of keys) {
            const item = this.get(table, key);
            units += item ? readUnits(itemSize(item), request['ConsistentRead'] === true) : 0;
            if (item)
              responses[table].push(
                project(item, request['ProjectionExpression'], request['ExpressionAttributeNames']),
              );
          }
          this.onConsumed?.({ table, read: units, write: 0 });
          consumed.push({ TableName: table, CapacityUnits: units });
        }
        return {
          Responses: responses,
          UnprocessedKeys: {},
          ...(input['ReturnConsumedCapacity'] && input['ReturnConsumedCapacity'] !== 'NONE'
            ? { ConsumedCapacity: consumed }
            : {}),
        };
      }
      case 'PutItemCommand':
      case 'UpdateItemCommand':
      case 'DeleteItemCommand': {
        const kind = command === 'PutItemCommand' ? 'Put' : command === 'UpdateItemCommand' ? 'Update' : 'Delete';
        const { before, after, key } = this.#prepare(kind, input);
        this.store(input.TableName as string, key, after);
        return {
          ...this.#returnValues(input, before, after),
          ...this.#consumed(input.TableName as string, 0, writeUnits(before, after), input),
        };
      }
      case 'TransactWriteItemsCommand': {
        const entries = input['TransactItems'] as Input[];
        const prepared: { table: string; key: Item; after: Item | undefined; units: number }[] = [];
        const reasons: { Code: string; Message?: string; Item?: Item }[] = [];
        let failed = false;
        for (const entry of entries) {
          const [kind, request] = Object.entries(entry)[0] as [string, Input];
          try {
            const { before, after, key } = this.#prepare(
              kind as 'Put' | 'Update' | 'Delete' | 'ConditionCheck',
              request,
            );
            if (kind !== 'ConditionCheck')
              prepared.push({
                table: (request as Input).TableName as string,
                key,
                after,
                units: 2 * writeUnits(before, after),
              });
            reasons.push({ Code: 'None' });
          } catch (error) {
            if (!(error instanceof ConditionalCheckFailedException)) throw error;
            failed = true;
            reasons.push({
              Code: 'ConditionalCheckFailed',
              Message: 'The conditional request failed',
              ...(error.Item ? { Item: error.Item } : {}),
            });
          }
        }
        if (failed)
          throw new TransactionCanceledException({
            message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((reason) => reason.Code).join(', ')}]`,
            $metadata: { httpStatusCode: 400 },
            CancellationReasons: reasons,
          });
        for (const write of prepared) {
          this.store(write.table, write.key, write.after);
          this.onConsumed?.({ table: write.table, read: 0, write: write.units });
        }
        return {};
      }
      case 'BatchWriteItemCommand': {
        for (const [table, requests] of Object.entries(input['RequestItems'] as Record<string, Input[]>)) {
          for (const request of requests) {
            if (request['PutRequest']) {
              const item = request['PutRequest']['Item'] as Item;
              const before = this.get(table, item);
              this.store(table, item, item);
              this.onConsumed?.({ table, read: 0, write: writeUnits(before, item) });
            } else {
              const key = request['DeleteRequest']['Key'] as Item;
              const before = this.get(table, key);
              this.store(table, key, undefined);
              this.onConsumed?.({ table, read: 0, write: writeUnits(before, undefined) });
            }
          }
        }
        return { UnprocessedItems: {} };
      }
      case 'QueryCommand':
        return this.#query(input);
      case 'ScanCommand':
        return this.#scan(input);
      default:
        throw new Error(`fake DynamoDB: ${command} is not modelled`);
    }
  }

  #query(input: Input): Record<string, unknown> {
    const table = this.#table(input.TableName as string);
    const names = input['ExpressionAttributeNames'] as Names;
    const values = input['ExpressionAttributeValues'] as Values;
    const { schema } = table;
    // The partition: the key condition's `<partition key> = :value`.
    const tokens = tokenize(input['KeyConditionExpression'] as string);
    let partitionValue: AttributeValue | undefined;
    for (let index = 0; index + 2 < tokens.length; index += 1) {
      const [name, op, value] = [tokens[index]!, tokens[index + 1]!, tokens[index + 2]!];
      const resolved = name.kind === 'name' ? names?.[name.text] : name.text;
      if (resolved === schema.partitionKey && op.text === '=' && value.kind === 'value')
        partitionValue = values?.[value.text];
    }
    if (partitionValue === undefined) throw new ValidationError('Query condition missed key schema element');
    let all = table.partitions.get(scalarText(partitionValue)) ?? [];
    if (input['ScanIndexForward'] === false) all = [...all].reverse();
    const start = input['ExclusiveStartKey'] as Item | undefined;
    const forward = input['ScanIndexForward'] !== false;
    const limit = (input['Limit'] as number | undefined) ?? Infinity;
    // The key condition selects a contiguous run of sort keys: collect it, at most a page.
    const list: Item[] = [];
    let bytes = 0;
    for (const item of all) {
      if (start && schema.sortKey) {
        const side = order(item[schema.sortKey], start[schema.sortKey]) ?? 0;
        if (forward ? side <= 0 : side >= 0) continue;
      }
      const matches = evaluateCondition(input['KeyConditionExpression'], item, names, values);
      if (!matches) {
        if (list.length > 0) break;
        continue;
      }
      list.push(item);
      bytes += itemSize(item);
      // One more than a page, so that #page knows there is more.
      if (list.length > limit || bytes > PAGE_BYTES + 400 * 1024) break;
    }
    return this.#page(table, list, input, names, values);
  }

  #scan(input: Input): Record<string, unknown> {
    const table = this.#table(input.TableName as string);
    const names = input['ExpressionAttributeNames'] as Names;
    const values = input['ExpressionAttributeValues'] as Values;
    let list = this.#ordered(table).flatMap(([, items]) => items);
    const start = input['ExclusiveStartKey'] as Item | undefined;
    if (start) {
      const startPk = scalarText(start[table.schema.partitionKey]);
      const at = list.findIndex(
        (item) =>
          scalarText(item[table.schema.partitionKey]) === startPk &&
          (!table.schema.sortKey || equal(item[table.schema.sortKey], start[table.schema.sortKey])),
      );
      // A start key whose item is gone: go on after the items of its partition that sort before it.
      list =
        at >= 0
          ? list.slice(at + 1)
          : list.filter((item) => hash(scalarText(item[table.schema.partitionKey])) > hash(startPk));
    }
    return this.#page(table, list, input, names, values);
  }

  #page(table: Table, list: Item[], input: Input, names: Names, values: Values): Record<string, unknown> {
    const limit = (input['Limit'] as number | undefined) ?? Infinity;
    const evaluated: Item[] = [];
    let bytes = 0;
    for (const item of list) {
      if (evaluated.length >= limit || bytes >= PAGE_BYTES) break;
      evaluated.push(item);
      bytes += itemSize(item);
    }
    const more = evaluated.length < list.length;
    const last = evaluated[evaluated.length - 1];
    const items = evaluated
      .filter((item) => evaluateCondition(input['FilterExpression'], item, names, values))
      .map((item) => project(item, input['ProjectionExpression'], names));
    const key: Item | undefined =
      more && last
        ? {
            [table.schema.partitionKey]: clone(last[table.schema.partitionKey]!),
            ...(table.schema.sortKey ? { [table.schema.sortKey]: clone(last[table.schema.sortKey]!) } : {}),
          }
        : undefined;
    return {
      ...(input['Select'] === 'COUNT' ? {} : { Items: items }),
      Count: items.length,
      ScannedCount: evaluated.length,
      ...(key ? { LastEvaluatedKey: key } : {}),
      ...this.#consumed(table.schema.name, readUnits(bytes, input['ConsistentRead'] === true), 0, input),
    };
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */
