import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { PROJECT_ROOT } from '../../../infra/project-root.ts';

/**
 * What CloudFormation does to each resource when a stack deployed from one template is updated
 * to another, read offline from the two templates and the CloudFormation resource specification
 * the CDK CLI itself uses for `cdk diff` (node_modules/aws-cdk/db.json.gz, the
 * @aws-cdk/service-spec database: every property marked `causesReplacement: yes | maybe`).
 *
 * A resource is replaced when its type changes, when a property (or a nested property) the
 * specification marks as replacing changes, or when such a property refers to a resource that is
 * itself replaced or new (its physical id changes, so the value does). A new logical id is a new
 * resource, and the old logical id is removed: CloudFormation creates the new one and deletes the
 * old one only at the end (AWS, "Update behaviors of stack resources": it "usually creates the
 * replacement resource first ... and then deletes the old resource").
 */

/** A CloudFormation template: only what the comparison reads. */
export interface TemplateJson {
  readonly Resources: Readonly<Record<string, TemplateResource>>;
}
export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Readonly<Record<string, unknown>>;
}

/**
 * The resource types that hold data or state a replacement loses, or that cannot exist twice:
 * - `AWS::DynamoDB::Table`: the events (a replacement is a new, empty table);
 * - `AWS::SQS::Queue`: the messages waiting, in flight or dead-lettered;
 * - `AWS::Lambda::EventSourceMapping`: a stream mapping's position in the stream, and Lambda refuses
 *   a second mapping of one source and one function, so the replacement cannot even be created;
 * - `AWS::Logs::LogGroup`: the logs;
 * - `AWS::SNS::Topic`: the subscriptions people confirmed by hand.
 * Everything else (roles, policies, functions, alarms, the dashboard, the state machine) is
 * configuration that a replacement recreates whole.
 */
export const DATA_TYPES = [
  'AWS::DynamoDB::Table',
  'AWS::SQS::Queue',
  'AWS::Lambda::EventSourceMapping',
  'AWS::Logs::LogGroup',
  'AWS::SNS::Topic',
] as const;

type Flag = 'yes' | 'maybe';
interface SpecType {
  readonly type: string;
  readonly reference?: { readonly $ref: string };
  readonly element?: SpecType;
  readonly types?: readonly SpecType[];
}
interface SpecProperty {
  readonly type: SpecType;
  readonly causesReplacement?: Flag | 'no';
}
interface SpecEntity {
  readonly $id: string;
  readonly cloudFormationType?: string;
  readonly properties: Readonly<Record<string, SpecProperty>>;
}
interface ServiceSpec {
  readonly resources: ReadonlyMap<string, SpecEntity>;
  readonly types: ReadonlyMap<string, SpecEntity>;
}

let loaded: ServiceSpec | undefined;

/** The CDK CLI's resource database (loaded once; about 2.6 MB gzipped). */
export function serviceSpec(): ServiceSpec {
  if (loaded) return loaded;
  const path = join(PROJECT_ROOT, 'node_modules', 'aws-cdk', 'db.json.gz');
  const db = JSON.parse(gunzipSync(readFileSync(path)).toString('utf8')) as {
    schema: { resource: { entities: SpecEntity[] }; typeDefinition: { entities: SpecEntity[] } };
  };
  loaded = {
    resources: new Map(db.schema.resource.entities.map((entity) => [entity.cloudFormationType ?? '', entity])),
    types: new Map(db.schema.typeDefinition.entities.map((entity) => [entity.$id, entity])),
  };
  return loaded;
}

/** Why a property's change replaces the resource (`P` or `P.Nested`), or undefined if it does not. */
function replacingChange(
  spec: ServiceSpec,
  properties: Readonly<Record<string, SpecProperty>>,
  before: Readonly<Record<string, unknown>>,
  after: Readonly<Record<string, unknown>>,
  path: string,
): string | undefined {
  for (const [name, property] of Object.entries(properties)) {
    const [old, now] = [before[name], after[name]];
    if (isDeepStrictEqual(old, now)) continue;
    if (property.causesReplacement === 'yes' || property.causesReplacement === 'maybe') {
      return `${path}${name} changed (${property.causesReplacement === 'yes' ? 'replacement' : 'may replace'})`;
    }
    const nested = nestedChange(spec, property.type, old, now, `${path}${name}.`);
    if (nested) return nested;
  }
  return undefined;
}

/** The same, inside a property whose type is a structure, a list or a map of structures. */
function nestedChange(spec: ServiceSpec, type: SpecType, old: unknown, now: unknown, path: string): string | undefined {
  if (type.type === 'union') {
    for (const each of type.types ?? []) {
      const found = nestedChange(spec, each, old, now, path);
      if (found) return found;
    }
    return undefined;
  }
  if ((type.type === 'array' || type.type === 'map') && type.element) {
    const [a, b] = [asRecord(old), asRecord(now)];
    if (!a || !b) return undefined;
    if (Object.keys(a).length !== Object.keys(b).length && type.element.type === 'ref') {
      // Elements added or removed: replacing if any element's own properties replace.
      return hasReplacingProperty(spec, type.element) ? `${path}: elements added or removed` : undefined;
    }
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const found = nestedChange(spec, type.element, a[key], b[key], `${path}${key}.`);
      if (found) return found;
    }
    return undefined;
  }
  if (type.type !== 'ref' || !type.reference) return undefined;
  const struct = spec.types.get(type.reference.$ref);
  const [a, b] = [asRecord(old) ?? {}, asRecord(now) ?? {}];
  return struct ? replacingChange(spec, struct.properties, a, b, path) : undefined;
}

function hasReplacingProperty(spec: ServiceSpec, type: SpecType): boolean {
  const struct = type.reference ? spec.types.get(type.reference.$ref) : undefined;
  return Object.values(struct?.properties ?? {}).some(
    (property) => property.causesReplacement === 'yes' || property.causesReplacement === 'maybe',
  );
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/** The logical ids a value refers to (Ref, Fn::GetAtt, ${X} in Fn::Sub). */
export function referencedIds(value: unknown, found: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    for (const each of value) referencedIds(each, found);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'Ref' && typeof inner === 'string') found.add(inner);
      else if (key === 'Fn::GetAtt' && Array.isArray(inner) && typeof inner[0] === 'string') found.add(inner[0]);
      else if (key === 'Fn::Sub') {
        const text = Array.isArray(inner) ? inner[0] : inner;
        for (const match of String(text).matchAll(/\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}/g)) found.add(match[1]!);
        referencedIds(inner, found);
      } else referencedIds(inner, found);
    }
  }
  return found;
}

/** One resource CloudFormation replaces, and why. */
export interface Replacement {
  readonly logicalId: string;
  readonly type: string;
  readonly why: string;
}

/** What an update from `before` to `after` does, resource by resource. */
export interface TemplateDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly replaced: readonly Replacement[];
  /** In both, not replaced (updated in place or unchanged). */
  readonly kept: readonly string[];
}

/**
 * Compare two templates as CloudFormation would update one into the other.
 *
 * @example
 * const diff = diffTemplates(synthesizeTemplate({}), synthesizeTemplate({ tableName: 'Events' }));
 * // diff.replaced: [{ logicalId: 'EventTable...', type: 'AWS::DynamoDB::Table', why: 'TableName changed (replacement)' }]
 */
export function diffTemplates(before: TemplateJson, after: TemplateJson): TemplateDiff {
  const spec = serviceSpec();
  const added = Object.keys(after.Resources).filter((id) => !(id in before.Resources));
  const removed = Object.keys(before.Resources).filter((id) => !(id in after.Resources));
  const replaced = new Map<string, Replacement>();
  for (const [id, now] of Object.entries(after.Resources)) {
    const old = before.Resources[id];
    if (!old) continue;
    const why =
      old.Type !== now.Type
        ? `type changed from ${old.Type}`
        : replacingChange(
            spec,
            spec.resources.get(now.Type)?.properties ?? {},
            old.Properties ?? {},
            now.Properties ?? {},
            '',
          );
    if (why) replaced.set(id, { logicalId: id, type: now.Type, why });
  }
  propagateReplacements(spec, before, after, new Set(added), replaced);
  const kept = Object.keys(after.Resources).filter((id) => id in before.Resources && !replaced.has(id));
  return { added, removed, replaced: [...replaced.values()], kept };
}

/** A replacing property that refers to a new or replaced resource changes with it: repeat until nothing moves. */
function propagateReplacements(
  spec: ServiceSpec,
  before: TemplateJson,
  after: TemplateJson,
  added: ReadonlySet<string>,
  replaced: Map<string, Replacement>,
): void {
  let moved = true;
  while (moved) {
    moved = false;
    for (const [id, now] of Object.entries(after.Resources)) {
      if (!(id in before.Resources) || replaced.has(id)) continue;
      for (const [name, property] of Object.entries(spec.resources.get(now.Type)?.properties ?? {})) {
        if (property.causesReplacement !== 'yes' && property.causesReplacement !== 'maybe') continue;
        const changed = [...referencedIds(now.Properties?.[name])].find((ref) => added.has(ref) || replaced.has(ref));
        if (changed === undefined) continue;
        replaced.set(id, {
          logicalId: id,
          type: now.Type,
          why: `${name} refers to ${changed}, which is new or replaced`,
        });
        moved = true;
        break;
      }
    }
  }
}

/** The replaced resources that hold data ({@link DATA_TYPES}), as `type logicalId`. */
export function replacedData(diff: TemplateDiff): string[] {
  return diff.replaced
    .filter((each) => (DATA_TYPES as readonly string[]).includes(each.type))
    .map((each) => `${each.type} ${each.logicalId}`)
    .sort();
}

/**
 * The event source mappings that exist at once during the update, as `source -> function`, and
 * the pairs held by more than one of them. While CloudFormation updates a stack every mapping of
 * the old template still exists (removed and replaced ones are deleted only at the end), the
 * updated ones may already hold their new properties, and new and replacement ones are created.
 * A reference names the same physical resource in both templates unless that resource is new or
 * replaced (then it is marked `(new)`).
 */
export function concurrentMappingConflicts(before: TemplateJson, after: TemplateJson, diff: TemplateDiff): string[] {
  const fresh = new Set([...diff.added, ...diff.replaced.map((each) => each.logicalId)]);
  const describe = (template: TemplateJson, id: string, newer: boolean): string => {
    const properties = template.Resources[id]?.Properties ?? {};
    const side = (value: unknown) => {
      const refs = [...referencedIds(value)];
      const mark = newer && refs.some((ref) => fresh.has(ref)) ? ' (new)' : '';
      return `${JSON.stringify(value)}${mark}`;
    };
    return `${side(properties['EventSourceArn'])} -> ${side(properties['FunctionName'])}`;
  };
  const holders = new Map<string, Set<string>>();
  const hold = (pair: string, mapping: string) => holders.set(pair, (holders.get(pair) ?? new Set()).add(mapping));
  for (const [id, resource] of Object.entries(before.Resources)) {
    if (resource.Type === 'AWS::Lambda::EventSourceMapping') hold(describe(before, id, false), `old ${id}`);
  }
  for (const [id, resource] of Object.entries(after.Resources)) {
    if (resource.Type !== 'AWS::Lambda::EventSourceMapping') continue;
    // A mapping kept across the update is one physical mapping, under its old and new properties.
    hold(describe(after, id, true), fresh.has(id) ? `new ${id}` : `old ${id}`);
  }
  return [...holders.entries()]
    .filter(([, mappings]) => mappings.size > 1)
    .map(([pair, mappings]) => `${pair}: ${[...mappings].sort().join(', ')}`)
    .sort();
}

/**
 * A template cut down to what {@link diffTemplates} and {@link concurrentMappingConflicts} read:
 * every resource's type, the properties that can replace it (directly or through a nested
 * property), and each event source mapping's function. Used to keep an earlier version's
 * templates as small fixtures (test/infra/fixtures/).
 */
export function reduceTemplate(template: TemplateJson): TemplateJson {
  const spec = serviceSpec();
  const resources: Record<string, TemplateResource> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    const properties = spec.resources.get(resource.Type)?.properties ?? {};
    const kept = Object.entries(resource.Properties ?? {}).filter(([name]) => {
      const property = properties[name];
      if (!property) return false;
      if (resource.Type === 'AWS::Lambda::EventSourceMapping' && name === 'FunctionName') return true;
      return (
        property.causesReplacement === 'yes' ||
        property.causesReplacement === 'maybe' ||
        (property.type.type !== 'string' && hasNestedReplacing(spec, property.type))
      );
    });
    resources[id] = { Type: resource.Type, ...(kept.length > 0 ? { Properties: Object.fromEntries(kept) } : {}) };
  }
  return { Resources: resources };
}

function hasNestedReplacing(spec: ServiceSpec, type: SpecType, seen: Set<string> = new Set()): boolean {
  if (type.type === 'union') return (type.types ?? []).some((each) => hasNestedReplacing(spec, each, seen));
  if (type.element) return hasNestedReplacing(spec, type.element, seen);
  if (type.type !== 'ref' || !type.reference || seen.has(type.reference.$ref)) return false;
  seen.add(type.reference.$ref);
  const struct = spec.types.get(type.reference.$ref);
  return Object.values(struct?.properties ?? {}).some(
    (property) =>
      property.causesReplacement === 'yes' ||
      property.causesReplacement === 'maybe' ||
      hasNestedReplacing(spec, property.type, seen),
  );
}
