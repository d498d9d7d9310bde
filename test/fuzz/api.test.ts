import http from 'node:http';
import { createLogger, createMetricsRegistry, Lifecycle, limits } from '@blog/common';
import { makeTempDir, signedFetch, startAppUnderTest, type AppUnderTest } from '@blog/testing';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommentsApp } from '../../services/comments/src/app.js';
import { commentsProjection } from '../../services/comments/src/domain/comments.js';
import { createEventBusApp } from '../../services/event-bus/src/app.js';
import { EventLog } from '../../services/event-bus/src/event-log.js';
import { createModerationApp } from '../../services/moderation/src/app.js';
import { createModerationProjection } from '../../services/moderation/src/domain/moderation.js';
import { createPostsApp } from '../../services/posts/src/app.js';
import { postsProjection } from '../../services/posts/src/domain/posts.js';
import { createQueryApp } from '../../services/query/src/app.js';
import { queryProjection } from '../../services/query/src/domain/query-view.js';
import {
  contentType,
  delivery,
  documented,
  extraHeaders,
  headerValue,
  invalidCreateCommentBody,
  invalidCreatePostBody,
  invalidPublishRequest,
  isDocumentedEvent,
  jsonBody,
  pathId,
  rawBody,
  rawInvalidSegment,
  unknownPostId,
  validTitle,
} from './generators.js';

const TEST_TIMEOUT = 45_000;
const RUNS = 60;

type Method = 'get' | 'post';
interface Route {
  method: Method;
  path: string;
}

const commonRoutes: Route[] = [
  { method: 'get', path: '/healthz' },
  { method: 'get', path: '/readyz' },
  { method: 'get', path: '/metrics' },
];
const existingPostId = 'fuzz-post';

/** One listening server per app, so that supertest does not open a new one for every request. */
function listen(app: http.RequestListener): Promise<http.Server> {
  return new Promise((resolve) => {
    const server = http.createServer(app).listen(0, '127.0.0.1', () => resolve(server));
  });
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Every answer is < 500, and every 4xx is `{error: {code, message}}`. `allow` lists the 5xx codes a case may answer with. */
function expectWellFormed(response: request.Response, allow: { status: number; code: string }[] = []): void {
  const allowed = allow.some((a) => a.status === response.status && response.body?.error?.code === a.code);
  if (!allowed) expect(response.status, `${response.status} ${response.text.slice(0, 300)}`).toBeLessThan(500);
  if (response.status >= 400) {
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.body).toEqual({ error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }) });
  }
}

function send(server: http.Server, route: Route, body?: string, type?: string): request.Test {
  const test = request(server)[route.method](route.path);
  if (type !== undefined) test.set('content-type', type);
  if (body !== undefined) void test.send(body);
  return test;
}

interface Subject {
  name: string;
  server: () => http.Server;
  routes: Route[];
}

describe('fuzzing every route of every service', () => {
  let posts: AppUnderTest<unknown>;
  let comments: AppUnderTest<unknown>;
  let query: AppUnderTest<unknown>;
  let moderation: AppUnderTest<unknown>;
  let busDir: Awaited<ReturnType<typeof makeTempDir>>;
  let busLog: EventLog;
  const servers = {} as Record<'posts' | 'comments' | 'query' | 'moderation' | 'bus', http.Server>;

  beforeAll(async () => {
    [posts, comments, query, moderation] = await Promise.all([
      startAppUnderTest(postsProjection, createPostsApp),
      startAppUnderTest(commentsProjection, createCommentsApp),
      startAppUnderTest(queryProjection, createQueryApp),
      startAppUnderTest(createModerationProjection(['orange']), createModerationApp),
    ]);
    for (const subject of [posts, comments, query, moderation]) subject.deps.lifecycle.markReady();

    busDir = await makeTempDir();
    const logger = createLogger('event-bus-fuzz', 'silent');
    busLog = await EventLog.open(busDir.path, logger);
    const lifecycle = new Lifecycle();
    lifecycle.markReady();
    const busApp = createEventBusApp({ logger, metrics: createMetricsRegistry('event-bus'), lifecycle, store: busLog });

    // The comments service needs one post to exist for its happy path.
    await comments.deps.bus.publish({ type: 'PostCreated', data: { id: existingPostId, title: 'fuzzed' } });
    await comments.deps.projection.catchUp();

    servers.posts = await listen(posts.app);
    servers.comments = await listen(comments.app);
    servers.query = await listen(query.app);
    servers.moderation = await listen(moderation.app);
    servers.bus = await listen(busApp);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(Object.values(servers).map(closeServer));
    await Promise.all([posts, comments, query, moderation].filter(Boolean).map((subject) => subject.close()));
    await busLog?.close();
    await busDir?.remove();
  }, 60_000);

  const subjects: Subject[] = [
    { name: 'posts', server: () => servers.posts, routes: [{ method: 'post', path: '/posts/create' }, { method: 'get', path: '/posts' }, { method: 'post', path: '/events' }] },
    {
      name: 'comments',
      server: () => servers.comments,
      routes: [
        { method: 'post', path: `/posts/${existingPostId}/comments` },
        { method: 'get', path: `/posts/${existingPostId}/comments` },
        { method: 'post', path: '/posts/no-such-post/comments' },
        { method: 'post', path: '/events' },
      ],
    },
    { name: 'query', server: () => servers.query, routes: [{ method: 'get', path: '/posts' }, { method: 'post', path: '/events' }] },
    { name: 'moderation', server: () => servers.moderation, routes: [{ method: 'post', path: '/events' }] },
    {
      name: 'event bus',
      server: () => servers.bus,
      routes: [
        { method: 'post', path: '/events' },
        { method: 'get', path: '/events' },
        { method: 'get', path: '/events?after=0&limit=5' },
      ],
    },
  ];

  // A delivery past a gap makes the consumer pull the missing events from its bus first. Our buses
  // hold (almost) nothing, so the consumer cannot fill the gap and answers the documented
  // 503 `events_missing`: "retry later", which is how the real bus is told to redeliver from lastSeq.
  const eventsMissing = { status: 503, code: 'events_missing' };

  describe.each(subjects)('$name', (subject) => {
    it(
      'when any route gets an arbitrary body with an arbitrary content type, then it answers < 500 and every 4xx is a JSON error',
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.constantFrom(...subject.routes, ...commonRoutes), fc.oneof(jsonBody, rawBody), fc.oneof(fc.constant('application/json'), contentType), async (route, body, type) => {
            const response = await send(subject.server(), route, body, type);
            expectWellFormed(response, route.path === '/events' && subject.name !== 'event bus' ? [eventsMissing] : []);
          }),
          { numRuns: RUNS },
        );
      },
      TEST_TIMEOUT,
    );

    it(
      'when any route gets arbitrary headers and x-request-id, then it answers < 500 and every 4xx is a JSON error',
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.constantFrom(...subject.routes, ...commonRoutes), extraHeaders, headerValue, fc.option(jsonBody, { nil: undefined }), async (route, headers, requestId, body) => {
            const test = request(subject.server())[route.method](route.path).set('x-request-id', requestId).set(headers);
            const response = await (body === undefined ? test : test.send(body));
            expectWellFormed(response, route.path === '/events' && subject.name !== 'event bus' ? [eventsMissing] : []);
          }),
          { numRuns: RUNS },
        );
      },
      TEST_TIMEOUT,
    );
  });

  it(
    'when GET /events on the bus gets arbitrary after and limit, then it answers < 500 and every 4xx is a JSON error',
    async () => {
      const param = fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.double().map(String), fc.constantFrom('', '-1', '1e400', 'NaN', 'Infinity', '0x10', '10001', '1.5'));
      await fc.assert(
        fc.asyncProperty(param, param, fc.boolean(), async (after, limit, asArray) => {
          const query = asArray ? `after[]=${encodeURIComponent(after)}&limit[x]=${encodeURIComponent(limit)}` : `after=${encodeURIComponent(after)}&limit=${encodeURIComponent(limit)}`;
          const response = await request(servers.bus).get(`/events?${query}`);
          expectWellFormed(response);
          if (response.status === 200) expect(Array.isArray(response.body)).toBe(true);
        }),
        { numRuns: RUNS },
      );
    },
    TEST_TIMEOUT,
  );

  it(
    'when GET /posts on query gets an arbitrary limit and before, then it answers < 500, every 4xx is a JSON error, and a 200 is a page of at most limit posts',
    async () => {
      const param = fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.double().map(String), fc.constantFrom('', '-1', '0', '1e400', 'NaN', '0x10', '101', '1.5', '9007199254740993'));
      await fc.assert(
        fc.asyncProperty(param, param, fc.boolean(), async (limit, before, asArray) => {
          const query = asArray ? `limit[]=${encodeURIComponent(limit)}&before[x]=${encodeURIComponent(before)}` : `limit=${encodeURIComponent(limit)}&before=${encodeURIComponent(before)}`;
          const response = await request(servers.query).get(`/posts?${query}`);
          expectWellFormed(response);
          if (response.status !== 200) return;
          if (asArray) {
            // `limit[]` and `before[x]` are other parameters' names (Express's simple query parser): the classic whole map.
            expect(response.body).not.toHaveProperty('nextCursor');
            for (const post of Object.values(response.body as object)) expect(post).toMatchObject({ id: expect.any(String), comments: expect.any(Array) });
          } else {
            expect(Object.keys(response.body as object).sort()).toEqual(['nextCursor', 'posts']);
            expect(response.body.posts.length).toBeLessThanOrEqual(Number(limit));
          }
        }),
        { numRuns: RUNS },
      );
    },
    TEST_TIMEOUT,
  );

  describe('comments path ids', () => {
    const safeEncode = (id: string): string | undefined => {
      try {
        return encodeURIComponent(id);
      } catch {
        return undefined; // lone surrogates cannot be encoded: not a request a client can make
      }
    };

    it(
      'when POST and GET /posts/:id/comments get an arbitrary encoded id, then they answer < 500 and refuse unknown posts with 404',
      async () => {
        await fc.assert(
          fc.asyncProperty(pathId, fc.boolean(), async (id, validContent) => {
            const encoded = safeEncode(id);
            fc.pre(encoded !== undefined);
            const path = `/posts/${encoded}/comments`;
            const got = await request(servers.comments).get(path);
            expectWellFormed(got);
            if (got.status === 200) expect(got.body).toEqual(id === existingPostId ? expect.any(Array) : []);
            const posted = await request(servers.comments)
              .post(path)
              .send(validContent ? { content: 'hello' } : { nope: true });
            expectWellFormed(posted);
            if (id !== existingPostId) expect(posted.status).toBeGreaterThanOrEqual(400);
          }),
          { numRuns: 100 },
        );
      },
      TEST_TIMEOUT,
    );

    it(
      'when the id is a raw invalid percent-encoding, then POST and GET /posts/:id/comments answer a JSON 4xx',
      async () => {
        await fc.assert(
          fc.asyncProperty(rawInvalidSegment, fc.string({ unit: fc.constantFrom('a', '-', '_', '1'), maxLength: 5 }), async (segment, suffix) => {
            const path = `/posts/${segment}${suffix}/comments`;
            for (const method of ['get', 'post'] as const) {
              const response = await request(servers.comments)[method](path).send({ content: 'hello' });
              expectWellFormed(response);
            }
          }),
          { numRuns: 40 },
        );
      },
      TEST_TIMEOUT,
    );
  });

  describe('invalid input is never stored', () => {
    it('the limits the services enforce are the documented ones the oracle is written from', () => {
      expect(limits).toMatchObject({ titleMaxLength: documented.titleMaxLength, contentMaxLength: documented.contentMaxLength, idMaxLength: documented.idMaxLength });
    });

    /** The whole log of a service's bus process, read as the services read it: signed with the bus secret. */
    const busLog = async (busUrl: string): Promise<string> => {
      const response = await signedFetch(`${busUrl}/events`);
      const text = await response.text();
      expect(response.status, text.slice(0, 300)).toBe(200);
      return text;
    };
    const snapshot = async (server: http.Server, path: string, busUrl: string) => ({
      view: (await request(server).get(path)).text,
      log: await busLog(busUrl),
    });

    it(
      'when POST /posts/create gets an invalid body, then it answers 400 and neither GET /posts nor the bus log change',
      async () => {
        const before = await snapshot(servers.posts, '/posts', posts.bus.url);
        await fc.assert(
          fc.asyncProperty(invalidCreatePostBody, async ({ reason, body }) => {
            const response = await request(servers.posts).post('/posts/create').set('content-type', 'application/json').send(JSON.stringify(body));
            expectWellFormed(response);
            expect(response.status, `${reason}: ${response.text.slice(0, 300)}`).toBe(400);
            expect(await snapshot(servers.posts, '/posts', posts.bus.url), reason).toEqual(before);
          }),
          { numRuns: RUNS },
        );
      },
      TEST_TIMEOUT,
    );

    it(
      'when POST /posts/:id/comments gets an invalid body or an unknown post id, then it answers 4xx and neither the comments nor the bus log change',
      async () => {
        const before = await snapshot(servers.comments, `/posts/${existingPostId}/comments`, comments.bus.url);
        const target = fc.oneof(
          invalidCreateCommentBody.map(({ reason, body }) => ({ reason, id: existingPostId, body })),
          fc.record({ id: unknownPostId, body: fc.constant({ content: 'valid' }) }).map(({ id, body }) => ({ reason: 'the post does not exist', id, body })),
          fc.tuple(unknownPostId, invalidCreateCommentBody).map(([id, { reason, body }]) => ({ reason: `the post does not exist and ${reason}`, id, body })),
        );
        await fc.assert(
          fc.asyncProperty(target, async ({ reason, id, body }) => {
            const response = await request(servers.comments).post(`/posts/${id}/comments`).set('content-type', 'application/json').send(JSON.stringify(body));
            expectWellFormed(response);
            expect(response.status, `${reason}: ${response.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
            expect(await snapshot(servers.comments, `/posts/${existingPostId}/comments`, comments.bus.url), reason).toEqual(before);
          }),
          { numRuns: RUNS },
        );
      },
      TEST_TIMEOUT,
    );

    it(
      'when the bus gets an invalid event or batch on POST /events, then it answers 400 and GET /events does not change',
      async () => {
        const readLog = async () => {
          const response = await request(servers.bus).get('/events');
          expect(response.status).toBe(200);
          return response.text;
        };
        const before = await readLog();
        await fc.assert(
          fc.asyncProperty(invalidPublishRequest, async ({ reason, body }) => {
            const response = await request(servers.bus).post('/events').set('content-type', 'application/json').send(JSON.stringify(body));
            expectWellFormed(response);
            expect(response.status, `${reason}: ${response.text.slice(0, 300)}`).toBe(400);
            expect(await readLog(), reason).toBe(before);
          }),
          // About thirty rules, each broken on its own: enough runs that every one is met.
          { numRuns: 300 },
        );
      },
      TEST_TIMEOUT,
    );
  });

  it(
    'when POST /posts/create gets a valid title, then it answers 201 with the trimmed title and GET /posts lists it',
    async () => {
      await fc.assert(
        fc.asyncProperty(validTitle, async (title) => {
          const response = await request(servers.posts).post('/posts/create').send({ title });
          expect(response.status).toBe(201);
          expect(response.body).toEqual({ id: expect.any(String), title: title.trim() });
          const list = await request(servers.posts).get('/posts');
          expect(list.body[response.body.id]).toEqual({ id: response.body.id, title: title.trim() });
        }),
        { numRuns: 50 },
      );
    },
    TEST_TIMEOUT,
  );

  describe('deliveries', () => {
    type Seq = { relative: number } | { absolute: unknown };
    const resolveSeq = (seq: Seq, lastSeq: number): unknown => ('relative' in seq ? lastSeq + seq.relative : seq.absolute);

    it(
      'when query gets valid next events between arbitrary envelopes on POST /events, then it applies each valid one, answers the rest < 500 (or 503 events_missing past a gap), stays alive, and GET /posts changes only for a valid next event',
      async () => {
        // Half the cases are a valid PostCreated numbered as query's next event: arbitrary envelopes
        // almost never are, and a consumer that refused everything would pass on those alone.
        const input = fc.oneof(validTitle.map((title) => ({ next: true as const, title })), delivery.map((generated) => ({ next: false as const, generated })));
        let applied = 0;
        await fc.assert(
          fc.asyncProperty(input, async (generated) => {
            const lastSeq = query.deps.projection.lastSeq;
            const before = (await request(servers.query).get('/posts')).text;
            if (generated.next) {
              const id = `fuzz-next-${lastSeq + 1}`;
              const response = await request(servers.query).post('/events').send({ id, seq: lastSeq + 1, type: 'PostCreated', data: { id, title: generated.title } });
              expect(response.status, response.text.slice(0, 300)).toBe(200);
              expect(response.body).toMatchObject({ status: 'applied', lastSeq: lastSeq + 1 });
              expect((await request(servers.query).get('/posts')).body[id]).toEqual({ id, title: generated.title.trim(), comments: [] });
              applied += 1;
              return;
            }
            const envelope = { ...generated.generated, seq: resolveSeq(generated.generated.seq, lastSeq) };
            const response = await request(servers.query).post('/events').send(envelope);
            expectWellFormed(response, [eventsMissing]);
            if (response.status === 503) expect(typeof envelope.seq === 'number' && envelope.seq > lastSeq + 1).toBe(true);
            const after = (await request(servers.query).get('/posts')).text;
            if (after !== before) {
              expect(response.status).toBe(200);
              expect(envelope.seq).toBe(lastSeq + 1);
              expect(isDocumentedEvent(envelope.type, envelope.data), JSON.stringify(envelope).slice(0, 300)).toBe(true);
            }
            expect((await request(servers.query).get('/healthz')).status).toBe(200);
          }),
          { numRuns: 100 },
        );
        // fast-check draws both kinds about equally: far more than the few a lucky run would need.
        expect(applied).toBeGreaterThan(10);
      },
      TEST_TIMEOUT,
    );

    it.each([
      ['posts', () => servers.posts, () => posts],
      ['comments', () => servers.comments, () => comments],
      ['moderation', () => servers.moderation, () => moderation],
    ] as const)(
      'when %s gets an arbitrary envelope on POST /events, then it answers < 500 (or 503 events_missing past a gap) and stays alive',
      async (_name, server, subject) => {
        await fc.assert(
          fc.asyncProperty(delivery, async (generated) => {
            const envelope = { ...generated, seq: resolveSeq(generated.seq, subject().deps.projection.lastSeq) };
            const response = await request(server()).post('/events').send(envelope);
            expectWellFormed(response, [eventsMissing]);
            expect((await request(server()).get('/healthz')).status).toBe(200);
          }),
          { numRuns: RUNS },
        );
      },
      TEST_TIMEOUT,
    );
  });
});
