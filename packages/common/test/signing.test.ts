import type { AddressInfo } from 'node:net';
import { postEndlessBody } from '@blog/testing';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createErrorHandler, createLogger, SignatureVerifier, signatureHeaders, signedJson, signRequest } from '../src/index.js';

const secret = 'a'.repeat(64);
const body = JSON.stringify({ id: 'e1', seq: 1, type: 'PostCreated', data: { id: 'p1', title: 't' } });

/** A route guarded like every internal route: it echoes what it received once the signature is checked. */
function guardedApp(verifier = new SignatureVerifier(secret, 'query')) {
  const received: unknown[] = [];
  const app = express();
  app.post('/events', signedJson(verifier, 1024 * 1024), (req, res) => {
    received.push(req.body);
    res.json({ ok: true });
  });
  app.use(createErrorHandler(createLogger('test', 'silent')));
  return { app, received };
}

const deliver = (app: express.Express, headers: Record<string, string>, payload = body) =>
  request(app).post('/events').set('content-type', 'application/json').set(headers).send(payload);

const signed = (overrides: Partial<Parameters<typeof signRequest>[1]> = {}, now?: number) =>
  signRequest(secret, { method: 'POST', target: '/events', audience: 'query', body, ...overrides }, now);

describe('signed internal requests', () => {
  it('when a delivery is signed for this service, then it is accepted and parsed', async () => {
    const { app, received } = guardedApp();

    const response = await deliver(app, signed());

    expect(response.status).toBe(200);
    expect(received).toEqual([JSON.parse(body)]);
  });

  it.each([
    ['carries no signature', () => ({})],
    ['is signed with another secret', () => signRequest('b'.repeat(64), { method: 'POST', target: '/events', audience: 'query', body })],
    ['was signed for another service', () => signed({ audience: 'posts' })],
    ['was signed for another path', () => signed({ target: '/events?x=1' })],
    ['has a body other than the one signed', () => signed({ body: body.replace('"t"', '"forged"') })],
    ['is older than the allowed clock skew', () => signed({}, Date.now() - 60_000)],
    ['has a malformed signature header', () => ({ ...signed(), [signatureHeaders.signature]: 'v1=00' })],
  ])('when a delivery %s, then it is refused with 401 and not handled', async (_case, headersOf) => {
    const { app, received } = guardedApp();

    const response = await deliver(app, headersOf());

    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) as string } });
    expect(received).toEqual([]);
  });

  it('when a request without signature headers sends a body that never ends, then it is refused with 401 without waiting for the body', async () => {
    const { app, received } = guardedApp();
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));

    try {
      const answer = await postEndlessBody(`http://127.0.0.1:${(server.address() as AddressInfo).port}/events`, { firstBytes: 512 * 1024 });

      expect(answer).toMatchObject({ status: 401, body: { error: { code: 'unauthorized', message: expect.stringMatching(/needs a signed request/) as string } } });
      expect(received).toEqual([]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('when a signed delivery is replayed, then the copy is refused with 401', async () => {
    const { app, received } = guardedApp();
    const headers = signed();

    const first = await deliver(app, headers);
    const replay = await deliver(app, headers);

    expect(first.status).toBe(200);
    expect(replay.status).toBe(401);
    expect(replay.body.error.message).toMatch(/already received/);
    expect(received).toHaveLength(1);
  });

  it('when no verifier is configured (no secret), then unsigned requests are accepted', async () => {
    const app = express();
    app.post('/events', signedJson(undefined, 1024), (req, res) => res.json(req.body));

    const response = await request(app).post('/events').set('content-type', 'application/json').send(body);

    expect(response.body).toEqual(JSON.parse(body));
  });
});
