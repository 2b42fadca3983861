/**
 * fauxqs 2.4 refuses a message body with a character above U+FFFF (`InvalidMessageContents`): it
 * tests the body with a pattern without the `u` flag, so the two UTF-16 halves of such a
 * character each fail it. SQS allows "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD |
 * #x10000 to #x10FFFF" (docs/DEVELOPMENT.md, "Local engines"). Test with SQS's whole set, by
 * code point: a lone half of a pair is still refused, as SQS refuses it. Checked by a test that
 * fails without it (test/integration/sqs-characters.test.ts).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// eslint-disable-next-line no-control-regex -- SQS's set names these control characters
const SQS_INVALID_CHARACTER = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

let patched = false;

export async function patchFauxqsBodyCharacters(): Promise<void> {
  if (patched) return;
  const require = createRequire(import.meta.url);
  const candidate = (require.resolve.paths('fauxqs') ?? [])
    .map((dir) => join(dir, 'fauxqs', 'dist', 'sqs', 'sqsTypes.js'))
    .find((file) => existsSync(file));
  if (!candidate) throw new Error('fauxqs is not installed (run npm ci)');
  const module = (await import(pathToFileURL(candidate).href)) as { INVALID_MESSAGE_BODY_CHAR?: unknown };
  const pattern = module.INVALID_MESSAGE_BODY_CHAR;
  if (!(pattern instanceof RegExp)) {
    throw new Error('fauxqs changed shape: check the body character patch in local/engines/fauxqs-characters.ts');
  }
  // Its send actions call this pattern's `test`; the constant itself cannot be rebound.
  pattern.test = (text: string) => SQS_INVALID_CHARACTER.test(text);
  patched = true;
}
