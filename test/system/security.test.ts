import { signRequest, signatureHeaders } from '@blog/common';
import { consumerNames, http, postEndlessBody, signedFetch, type Stack, startStack, testBusSecret } from '@blog/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPost, queryView, readAllEvents, unique, waitUntilSettled } from './helpers.js';

/**
 * Black-box checks of what an attacker on the internal network, or a browser on another origin, can
 * do to the real processes: the stack runs with EVENT_BUS_SECRET, as every run mode configures it.
 */

let stack: Stack;
let postId: string;

beforeAll(async () => {
  stack = await startStack();
  postId = (await createPost(stack, unique('security'))).body.id;
  await waitUntilSettled(stack);
}, 60_000);
afterAll(() => stack.destroy());

/** What the bus would deliver for a post nobody created. */
const forgedPost = (seq: number) => JSON.stringify({ id: `forged-${seq}`, seq, type: 'PostCreated', data: { id: `forged-${seq}`, title: 'forged' } });
const postJson = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(10_000) });

describe('deliveries to the services', () => {
  it.each(consumerNames)('when an unsigned delivery reaches %s, then it is refused with 401 and changes nothing', async (name) => {
    const before = await queryView(stack);
    const headSeq = (await readAllEvents(stack.bus)).length;

    const response = await postJson(`${stack[name].url}/events`, forgedPost(headSeq + 1));

    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) as string } });
    expect(await queryView(stack)).toEqual(before);
  });

  it('when a delivery signed for another service is sent to query, then it is refused with 401', async () => {
    const body = forgedPost(1);
    const response = await postJson(`${stack.query.url}/events`, body, signRequest(testBusSecret, { method: 'POST', target: '/events', audience: 'posts', body }));

    expect(response.status).toBe(401);
  });

  it('when a valid delivery is captured and replayed, then the replay is refused with 401', async () => {
    // An old event (seq 1): accepted as a duplicate the first time, so nothing changes either way.
    const [first] = await readAllEvents(stack.bus);
    const body = JSON.stringify(first);
    const headers = signRequest(testBusSecret, { method: 'POST', target: '/events', audience: 'query', body });

    const original = await postJson(`${stack.query.url}/events`, body, headers);
    const replay = await postJson(`${stack.query.url}/events`, body, headers);

    expect(original.status).toBe(200);
    expect(replay.status).toBe(401);
  });
});

describe('the bus', () => {
  it('when someone publishes without the secret, then 401 and the log is unchanged', async () => {
    const before = await readAllEvents(stack.bus);

    const unsigned = await postJson(`${stack.bus.url}/events`, JSON.stringify({ type: 'PostCreated', data: { id: 'forged', title: 'forged' } }));
    const wrongSecret = await signedFetch(`${stack.bus.url}/events`, {
      method: 'POST',
      body: JSON.stringify({ type: 'PostCreated', data: { id: 'forged', title: 'forged' } }),
      secret: 'not-the-secret-'.repeat(4),
    });

    expect([unsigned.status, wrongSecret.status]).toEqual([401, 401]);
    expect(await readAllEvents(stack.bus)).toEqual(before);
  });

  it.each([
    ['the bus', () => stack.bus.url],
    ['query', () => stack.query.url],
  ])('when an unsigned POST /events to %s sends a body that never ends, then it is refused with 401 all the same', async (_name, urlOf) => {
    const answer = await postEndlessBody(`${urlOf()}/events`, { firstBytes: 1024 * 1024 });

    expect(answer).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
  });

  it('when someone reads the log without the secret, then 401', async () => {
    const response = await fetch(`${stack.bus.url}/events`);

    expect(response.status).toBe(401);
    expect(response.headers.get(signatureHeaders.signature)).toBeNull();
  });
});

describe('public routes', () => {
  it('send security headers and no CORS permission to other origins', async () => {
    const cross = { origin: 'https://evil.example' };
    const get = await fetch(`${stack.query.url}/posts`, { headers: cross });
    const preflight = await fetch(`${stack.posts.url}/posts/create`, {
      method: 'OPTIONS',
      headers: { ...cross, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });

    expect(get.headers.get('x-content-type-options')).toBe('nosniff');
    expect(get.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(get.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(get.headers.get('x-powered-by')).toBeNull();
    for (const response of [get, preflight]) {
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expect(response.headers.get('access-control-allow-methods')).toBeNull();
    }
  });

  it.each([
    ['malformed JSON', () => postJson(`${stack.posts.url}/posts/create`, '{"title":')],
    ['a wrong type', () => postJson(`${stack.posts.url}/posts/create`, '{"title":{"$gt":""}}')],
    ['an unknown route', () => fetch(`${stack.comments.url}/admin`)],
    ['a comment on an unknown post', () => postJson(`${stack.comments.url}/posts/nope/comments`, '{"content":"x"}')],
  ])('when a request has %s, then the error is JSON with no stack trace or internal detail', async (_case, send) => {
    const response = await send();
    const text = await response.text();

    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(JSON.parse(text)).toMatchObject({ error: { code: expect.any(String) as string, message: expect.any(String) as string } });
    expect(text).not.toMatch(/\bat .+\.(js|ts):\d+|node_modules|\/dist\/|stack/i);
  });

  it('when the post from before is read, then it is still there (nothing above changed the data)', async () => {
    expect((await queryView(stack))[postId]).toBeDefined();
    expect((await http('GET', `${stack.posts.url}/posts`)).status).toBe(200);
  });
});
