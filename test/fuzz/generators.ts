import fc from 'fast-check';

/**
 * The rules the invalid-input oracle below is written from: the "Limits" table of docs/operating.md,
 * the "Events" table of docs/architecture.md (and the event id rule of `POST /events`: 1-128 of `A-Z a-z 0-9 . _ : -`), restated here
 * rather than imported, so that a schema loosened by mistake still meets the inputs it must refuse.
 * The contract's `limits` must agree with them: the fuzz suite checks that.
 */
export const documented = {
  titleMaxLength: 200,
  contentMaxLength: 2000,
  idMaxLength: 64,
  eventIdMaxLength: 128,
  eventTypes: ['PostCreated', 'CommentCreated', 'CommentModerated', 'CommentUpdated'],
  statuses: ['pending', 'approved', 'rejected'],
} as const;

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
  fc.constantFrom('/', '%', '..', '../..', '.', '__proto__', 'constructor', 'hasOwnProperty', '%00', ' ', '\u0000', 'a'.repeat(documented.idMaxLength + 1), 'x'.repeat(5_000)),
);
/** Raw path segments that are not valid percent-encoding at all. */
export const rawInvalidSegment = fc.constantFrom('%E0%A4%A', '%', '%%', '%zz', '%C0%AF', '%ED%A0%80', '%FF', 'abc%', '%u0041', '%2', '%00');

/** Titles the API accepts: 1-200 characters once trimmed, not only whitespace. */
export const validTitle = fc
  .string({ unit: 'grapheme-composite', minLength: 1, maxLength: documented.titleMaxLength })
  .filter((title) => {
    const trimmed = title.trim();
    return trimmed.length >= 1 && trimmed.length <= documented.titleMaxLength;
  });

const entityIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const eventIdArb = fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/);

// ---- Invalid input, by construction ------------------------------------------------------------

/** An input the API must refuse, with the rule it breaks (the reason is what a failure prints). */
export interface InvalidCase<T = unknown> {
  reason: string;
  body: T;
}

const because = <T>(reason: string, arbitrary: fc.Arbitrary<T>): fc.Arbitrary<InvalidCase<T>> => arbitrary.map((body) => ({ reason, body }));

/** Characters String.prototype.trim removes (what "after trimming" means). */
const whitespace = fc.constantFrom(' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u1680', '\u2000', '\u2028', '\u2029', '\u202f', '\u3000', '\ufeff');
const onlyWhitespace = fc.string({ unit: whitespace, maxLength: 10 });
/** Text of at least `min` characters however they are counted (UTF-16 units, code points or graphemes), none of them whitespace. */
const visibleTextOfAtLeast = (min: number, max: number) =>
  fc.tuple(onlyWhitespace, fc.string({ unit: fc.constantFrom('x', '-', '\u00e9', '\u540d', '\u{1f600}'), minLength: min, maxLength: max }), onlyWhitespace).map(([before, text, after]) => `${before}${text}${after}`);
const notAString = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }));
const notAnObject = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }));
/** An object of arbitrary fields, none of them named `field`. */
const objectWithout = (field: string) => fc.dictionary(fc.string({ maxLength: 10 }).filter((key) => key !== field), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 });

/** A string that breaks a `[allowed]{1,max}` rule: empty, one too long, or with a character outside `allowed`. */
const brokenId = (max: number, forbidden: readonly string[]) =>
  fc.oneof(
    fc.constant(''),
    fc.constant('a'.repeat(max + 1)),
    fc.tuple(fc.stringMatching(/^[A-Za-z0-9_-]{0,20}$/), fc.constantFrom(...forbidden), fc.stringMatching(/^[A-Za-z0-9_-]{0,20}$/)).map(([before, bad, after]) => `${before}${bad}${after}`),
  );
const brokenEntityId = brokenId(documented.idMaxLength, [' ', '/', '.', ':', '%', '?', '#', '+', '\u00e9', '\u0000', '\u{1f600}']);
const brokenEventId = brokenId(documented.eventIdMaxLength, [' ', '/', '%', '?', '#', '+', ',', '\u00e9', '\u0000']);

/** Bodies POST /posts/create must refuse (400): no usable title. */
export const invalidCreatePostBody: fc.Arbitrary<InvalidCase> = fc.oneof(
  because('the body is not a JSON object', notAnObject),
  because('there is no title', objectWithout('title')),
  because('the title is not a string', fc.record({ title: notAString })),
  because('the title is empty or only whitespace', fc.record({ title: onlyWhitespace })),
  because(`the title is over ${documented.titleMaxLength} characters after trimming`, fc.record({ title: visibleTextOfAtLeast(documented.titleMaxLength + 1, 400) })),
);

/** Bodies POST /posts/:id/comments must refuse (400): no usable content. */
export const invalidCreateCommentBody: fc.Arbitrary<InvalidCase> = fc.oneof(
  because('the body is not a JSON object', notAnObject),
  because('there is no content', objectWithout('content')),
  because('the content is not a string', fc.record({ content: notAString })),
  because('the content is empty or only whitespace', fc.record({ content: onlyWhitespace })),
  because(`the content is over ${documented.contentMaxLength} characters after trimming`, fc.record({ content: visibleTextOfAtLeast(documented.contentMaxLength + 1, documented.contentMaxLength + 50) })),
);

/** Post ids no post has (the suite's only post is `fuzz-post`), and that are valid ids. */
export const unknownPostId = fc.stringMatching(/^[A-Za-z0-9_-]{1,50}$/).map((id) => `missing-${id}`);

/** Events the bus stores: what the invalid ones below are each one change away from. */
const comment = (type: string, status: fc.Arbitrary<string>) =>
  fc.record({ type: fc.constant(type), data: fc.record({ id: entityIdArb, postId: entityIdArb, content: fc.constantFrom('c', 'hello'), status }) });
export const validPublishRequest = fc.oneof(
  fc.record({ type: fc.constant('PostCreated'), data: fc.record({ id: entityIdArb, title: fc.constantFrom('ok', 'a title') }) }),
  comment('CommentCreated', fc.constant('pending')),
  comment('CommentModerated', fc.constantFrom('approved', 'rejected')),
  comment('CommentUpdated', fc.constantFrom(...documented.statuses)),
);
type Event = { type: string; data: Record<string, unknown>; [key: string]: unknown };
const validEvent = validPublishRequest as fc.Arbitrary<Event>;
const changed = (change: (event: Event) => Event) => validEvent.map(change);
const withData = (event: Event, data: Record<string, unknown>): Event => ({ ...event, data: { ...event.data, ...data } });
const withoutData = (event: Event, field: string): Event => ({ ...event, data: Object.fromEntries(Object.entries(event.data).filter(([key]) => key !== field)) });
const statusNotIn = (allowed: readonly string[]) => fc.constantFrom(...documented.statuses.filter((status) => !allowed.includes(status)), '', 'Pending', 'bogus', 'approved ');

/** One event the bus must refuse (400), whichever rule of the Events table it breaks. */
const invalidEvent: fc.Arbitrary<InvalidCase> = fc.oneof(
  because('the event is not a JSON object', fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null))),
  because('there is no type', objectWithout('type')),
  because('the type is not a string', fc.tuple(validEvent, notAString).map(([event, type]) => ({ ...event, type }))),
  because('the type is not an event type', fc.tuple(validEvent, fc.string({ maxLength: 20 })).map(([event, type]) => ({ ...event, type })).filter((event) => !(documented.eventTypes as readonly string[]).includes(event.type))),
  because('the data is missing', changed(({ data: _data, ...event }) => event as Event)),
  because('the data is not an object', fc.tuple(validEvent, notAnObject).map(([event, data]) => ({ ...event, data }))),
  because('the data has a field the event does not define', fc.tuple(validEvent, fc.constantFrom('extra', 'Title', 'seq', '__proto__')).map(([event, field]) => ({ ...event, data: { ...event.data, [field]: 'x' } }))),
  because('the envelope has a field a publish request does not define', fc.tuple(validEvent, fc.constantFrom('extra', 'seq', 'Type')).map(([event, field]) => ({ ...event, [field]: 1 }))),
  because('the event id breaks the id rules', fc.tuple(validEvent, brokenEventId).map(([event, id]) => ({ ...event, id }))),
  because('the event id is not a string', fc.tuple(validEvent, fc.oneof(fc.integer(), fc.constant(null), fc.boolean())).map(([event, id]) => ({ ...event, id }))),
  because('the id in the data breaks the id rules', fc.tuple(validEvent, brokenEntityId).map(([event, id]) => withData(event, { id }))),
  because('the id in the data is missing', changed((event) => withoutData(event, 'id'))),
  because('the title is missing', fc.record({ type: fc.constant('PostCreated'), data: fc.record({ id: entityIdArb }) })),
  because('the title is empty or only whitespace', fc.record({ type: fc.constant('PostCreated'), data: fc.record({ id: entityIdArb, title: onlyWhitespace }) })),
  because(`the title is over ${documented.titleMaxLength} characters after trimming`, fc.record({ type: fc.constant('PostCreated'), data: fc.record({ id: entityIdArb, title: visibleTextOfAtLeast(documented.titleMaxLength + 1, 300) }) })),
  because('the post id of a comment breaks the id rules', fc.tuple(comment('CommentUpdated', fc.constantFrom(...documented.statuses)), brokenEntityId).map(([event, postId]) => withData(event, { postId }))),
  because('the content of a comment is empty or only whitespace', fc.tuple(comment('CommentCreated', fc.constant('pending')), onlyWhitespace).map(([event, content]) => withData(event, { content }))),
  because(`the content of a comment is over ${documented.contentMaxLength} characters`, fc.tuple(comment('CommentModerated', fc.constant('approved')), visibleTextOfAtLeast(documented.contentMaxLength + 1, documented.contentMaxLength + 20)).map(([event, content]) => withData(event, { content }))),
  because('a CommentCreated is not pending', fc.tuple(comment('CommentCreated', fc.constant('pending')), statusNotIn(['pending'])).map(([event, status]) => withData(event, { status }))),
  because('a CommentModerated is neither approved nor rejected', fc.tuple(comment('CommentModerated', fc.constant('approved')), statusNotIn(['approved', 'rejected'])).map(([event, status]) => withData(event, { status }))),
  because('a CommentUpdated has no known status', fc.tuple(comment('CommentUpdated', fc.constant('pending')), statusNotIn(documented.statuses)).map(([event, status]) => withData(event, { status }))),
);

/** What POST /events on the bus must refuse (400): an invalid event, or a batch that holds one or none. */
export const invalidPublishRequest: fc.Arbitrary<InvalidCase> = fc.oneof(
  { weight: 8, arbitrary: invalidEvent },
  { weight: 1, arbitrary: because('the batch is empty', fc.constant([])) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.array(validPublishRequest, { maxLength: 3 }), invalidEvent, fc.array(validPublishRequest, { maxLength: 3 }))
      .map(([before, bad, after]) => ({ reason: `a batch holds an invalid event (${bad.reason})`, body: [...before, bad.body, ...after] })),
  },
);

/**
 * A delivery envelope, with `seq` either absolute or relative to the consumer's lastSeq
 * (`{ relative: n }` is resolved by the test, so that "the next event" is generated often).
 */
export const deliverySeq = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -2, max: 3 }).map((relative) => ({ relative })) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e308), fc.jsonValue({ maxDepth: 1 })).map((absolute) => ({ absolute })) },
);
export const deliveryType = fc.oneof(fc.constantFrom(...documented.eventTypes), fc.string({ maxLength: 70 }), fc.jsonValue({ maxDepth: 1 }));
export const deliveryData = fc.oneof(
  fc.record({ id: entityIdArb, title: fc.oneof(validTitle, fc.string({ maxLength: 5 })) }),
  fc.record({ id: entityIdArb, postId: entityIdArb, content: fc.string({ minLength: 1, maxLength: 20 }), status: fc.constantFrom('pending', 'approved', 'rejected', 'bogus') }),
  fc.jsonValue({ maxDepth: 2 }),
);
export const deliveryId = fc.oneof(eventIdArb, fc.string({ maxLength: 140 }), fc.jsonValue({ maxDepth: 1 }));
export const delivery = fc.record({ id: deliveryId, seq: deliverySeq, type: deliveryType, data: deliveryData }, { requiredKeys: ['seq'] });

const isEntityId = (value: unknown): boolean => typeof value === 'string' && new RegExp(`^[A-Za-z0-9_-]{1,${documented.idMaxLength}}$`).test(value);
const isVisibleText = (value: unknown, max: number): boolean => typeof value === 'string' && value.trim().length >= 1 && value.trim().length <= max;
const commentStatusesOf = new Map<unknown, readonly string[]>([
  ['CommentCreated', ['pending']],
  ['CommentModerated', ['approved', 'rejected']],
  ['CommentUpdated', documented.statuses],
]);

/**
 * Whether `{type, data}` is an event of the Events table (docs/architecture.md), judged without our
 * schemas: the delivery property's oracle.
 */
export function isDocumentedEvent(type: unknown, data: unknown): boolean {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
  const fields = data as Record<string, unknown>;
  const hasExactly = (...keys: string[]) => JSON.stringify(Object.keys(fields).sort()) === JSON.stringify(keys.sort());
  if (type === 'PostCreated') return hasExactly('id', 'title') && isEntityId(fields.id) && isVisibleText(fields.title, documented.titleMaxLength);
  const statuses = commentStatusesOf.get(type);
  if (!statuses) return false;
  return (
    hasExactly('id', 'postId', 'content', 'status') &&
    isEntityId(fields.id) &&
    isEntityId(fields.postId) &&
    isVisibleText(fields.content, documented.contentMaxLength) &&
    statuses.includes(fields.status as string)
  );
}
