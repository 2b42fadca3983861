/**
 * Stream records as DynamoDB Streams on AWS writes them, from DynamoDB Local's (docs/DEVELOPMENT.md,
 * "Local engines"): DynamoDB Local's GetRecords writes an empty map attribute without its type,
 * `"Data":{}` and `{"M":{"x":{}}}` on the wire, where AWS writes `{"M":{}}`. `unmarshall` refuses
 * a value without a type ("No value defined"), so one such event would stop a shard for good.
 */
import type { AttributeValue, _Record as StreamRecord } from '@aws-sdk/client-dynamodb-streams';

/** One attribute value, with every type-less `{}` in it (at any depth) read as the empty map. */
export function normaliseAttributeValue(value: AttributeValue): AttributeValue {
  if (value === null || typeof value !== 'object') return value;
  if (Object.keys(value).length === 0) return { M: {} };
  if (value.M !== undefined) return { M: normaliseImage(value.M) };
  if (value.L !== undefined) return { L: value.L.map(normaliseAttributeValue) };
  return value;
}

/** An item image (`Keys`, `NewImage`, `OldImage`), each attribute normalised. */
export function normaliseImage(image: Record<string, AttributeValue>): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(image).map(([name, value]) => [name, normaliseAttributeValue(value)]));
}

/** A GetRecords record with its images in AWS's form; the other fields as they were. */
export function normaliseStreamRecord(record: StreamRecord): StreamRecord {
  const stream = record.dynamodb;
  if (!stream) return record;
  return {
    ...record,
    dynamodb: {
      ...stream,
      ...(stream.Keys ? { Keys: normaliseImage(stream.Keys) } : {}),
      ...(stream.NewImage ? { NewImage: normaliseImage(stream.NewImage) } : {}),
      ...(stream.OldImage ? { OldImage: normaliseImage(stream.OldImage) } : {}),
    },
  };
}
