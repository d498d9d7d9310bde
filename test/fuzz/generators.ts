import { eventTypes, limits } from '@blog/common';
import fc from 'fast-check';

/** Any JSON value, serialised: what a well-behaved but wrong client could send. */
export const jsonBody = fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value));

/** Raw text sent as if it were JSON: mostly not JSON at all. */
export const rawBody = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.constantFrom('', '{', '{"title":', 'null', '"title"', '[]', '{"title":"\\ud800"}', '{"__proto__":{"title":"x"}}', '\u0000', '{"title":1e999}'),
);

/** Content types, well-formed or not; the HTTP client refuses control characters, so none are generated. */
const headerChar = fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code));
export const headerValue = fc.string({ unit: headerChar, maxLength: 300 });
export const contentType = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-16',
    'application/json; charset=latin1',
    'application/json; charset=nonsense',
    'application/x-www-form-urlencoded',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/*+json',
    'application/vnd.api+json',
    '*/*',
    ';',
  ),
  headerValue,
);

/** Headers the client may send freely; framing headers (content-length, transfer-encoding, host…) are the client's business. */
const framingHeaders = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'expect', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-connection']);
export const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/).filter((name) => !framingHeaders.has(name));
export const extraHeaders = fc.dictionary(fc.oneof(headerName, fc.constantFrom('content-encoding', 'accept', 'accept-encoding', 'content-type', 'x-forwarded-for')), headerValue, { maxKeys: 5 });

/** Path ids: anything at all, plus the ones that could hurt a path or a map. */
export const pathId = fc.oneof(
  fc.string({ maxLength: 100 }),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.constantFrom('/', '%', '..', '../..', '.', '__proto__', 'constructor', 'hasOwnProperty', '%00', ' ', '\u0000', 'a'.repeat(limits.idMaxLength + 1), 'x'.repeat(5_000)),
);
/** Raw path segments that are not valid percent-encoding at all. */
export const rawInvalidSegment = fc.constantFrom('%E0%A4%A', '%', '%%', '%zz', '%C0%AF', '%ED%A0%80', '%FF', 'abc%', '%u0041', '%2', '%00');

/** Titles the API accepts: 1-200 characters once trimmed, not only whitespace. */
export const validTitle = fc
  .string({ unit: 'grapheme-composite', minLength: 1, maxLength: limits.titleMaxLength })
  .filter((title) => {
    const trimmed = title.trim();
    return trimmed.length >= 1 && trimmed.length <= limits.titleMaxLength;
  });

const entityIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const eventIdArb = fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/);

/** Objects that POST /posts/create must refuse: no usable title. */
export const invalidCreatePostBody = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof value !== 'object' || value === null || Array.isArray(value) || !('title' in value)),
  fc.record({ title: fc.oneof(fc.constantFrom('', ' ', '\t\n', '\u00a0\u2028'), fc.string({ minLength: limits.titleMaxLength + 1, maxLength: 400 }).filter((t) => t.trim().length > limits.titleMaxLength), fc.jsonValue().filter((v) => typeof v !== 'string')) }),
);

/** Objects that POST /posts/:id/comments must refuse: no usable content. */
export const invalidCreateCommentBody = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).filter((value) => typeof value !== 'object' || value === null || Array.isArray(value) || !('content' in value)),
  fc.record({ content: fc.oneof(fc.constantFrom('', ' ', '\n\t'), fc.constant('c'.repeat(limits.contentMaxLength + 1)), fc.jsonValue().filter((v) => typeof v !== 'string')) }),
);

/** Events the bus must refuse: wrong type, wrong data, extra fields, bad ids. */
export const invalidPublishRequest = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ type: fc.string({ maxLength: 20 }).filter((type) => !(eventTypes as readonly string[]).includes(type)), data: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({ type: fc.constant('PostCreated'), data: fc.jsonValue({ maxDepth: 2 }) }).filter((e) => !isValidPostData(e.data)),
  fc.record({ type: fc.constant('PostCreated'), data: fc.record({ id: fc.string({ maxLength: 80 }).filter((id) => !/^[A-Za-z0-9_-]{1,64}$/.test(id)), title: fc.constant('ok') }) }),
  fc.record({ type: fc.constant('PostCreated'), data: fc.record({ id: entityIdArb, title: fc.constant('ok') }), id: fc.string({ maxLength: 200 }).filter((id) => !/^[A-Za-z0-9._:-]{1,128}$/.test(id)) }),
  fc.record({ type: fc.constant('PostCreated'), data: fc.record({ id: entityIdArb, title: fc.constant('ok') }), extra: fc.jsonValue() }),
  fc.record({ type: fc.constantFrom('CommentCreated', 'CommentModerated', 'CommentUpdated'), data: fc.record({ id: entityIdArb, postId: entityIdArb, content: fc.constant('c'), status: fc.string({ maxLength: 10 }) }) }),
);

function isValidPostData(data: unknown): boolean {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
  const keys = Object.keys(data);
  const { id, title } = data as { id?: unknown; title?: unknown };
  return keys.length === 2 && typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id) && typeof title === 'string' && title.trim().length >= 1 && title.trim().length <= 200;
}

/**
 * A delivery envelope, with `seq` either absolute or relative to the consumer's lastSeq
 * (`{ relative: n }` is resolved by the test, so that "the next event" is generated often).
 */
export const deliverySeq = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -2, max: 3 }).map((relative) => ({ relative })) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e308), fc.jsonValue({ maxDepth: 1 })).map((absolute) => ({ absolute })) },
);
export const deliveryType = fc.oneof(fc.constantFrom(...eventTypes), fc.string({ maxLength: 70 }), fc.jsonValue({ maxDepth: 1 }));
export const deliveryData = fc.oneof(
  fc.record({ id: entityIdArb, title: fc.oneof(validTitle, fc.string({ maxLength: 5 })) }),
  fc.record({ id: entityIdArb, postId: entityIdArb, content: fc.string({ minLength: 1, maxLength: 20 }), status: fc.constantFrom('pending', 'approved', 'rejected', 'bogus') }),
  fc.jsonValue({ maxDepth: 2 }),
);
export const deliveryId = fc.oneof(eventIdArb, fc.string({ maxLength: 140 }), fc.jsonValue({ maxDepth: 1 }));
export const delivery = fc.record({ id: deliveryId, seq: deliverySeq, type: deliveryType, data: deliveryData }, { requiredKeys: ['seq'] });
