import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createLogger, currentRequestId, requestLogging } from '../src/logging.js';

/** An app with the access log in front, whose log lines are kept as parsed JSON. */
function appWithLog(level: 'info' | 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('logging-test', level, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const app = express();
  app.use(requestLogging(logger));
  app.get('/healthz', (_req, res) => void res.status(500).end());
  app.get('/ok', (_req, res) => void res.json({ requestId: currentRequestId() }));
  app.get('/missing', (_req, res) => void res.status(404).json({}));
  app.get('/broken', (_req, res) => void res.status(500).json({}));
  return { app, lines };
}

describe('requestLogging', () => {
  it('when a request fails, then one line names its request id, method, url, status and time, at error for 5xx and info for 4xx', async () => {
    const { app, lines } = appWithLog('info');

    await request(app).get('/missing').set('x-request-id', 'trace-404');
    await request(app).get('/broken').set('x-request-id', 'trace-500');

    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', service: 'logging-test', requestId: 'trace-404', req: { method: 'GET', url: '/missing' }, res: { statusCode: 404 }, responseTime: expect.any(Number) as number, msg: 'request completed' }),
      expect.objectContaining({ level: 'error', requestId: 'trace-500', req: { method: 'GET', url: '/broken' }, res: { statusCode: 500 } }),
    ]);
  });

  it('when a request succeeds, then it is logged at debug only, and the handler sees the request id', async () => {
    const quiet = appWithLog('info');
    const verbose = appWithLog('debug');

    const answer = await request(quiet.app).get('/ok').set('x-request-id', 'trace-ok');
    await request(verbose.app).get('/ok').set('x-request-id', 'trace-ok');

    expect(answer.body).toEqual({ requestId: 'trace-ok' });
    expect(quiet.lines).toEqual([]);
    expect(verbose.lines).toEqual([expect.objectContaining({ level: 'debug', requestId: 'trace-ok', res: { statusCode: 200 } })]);
  });

  it('when the caller sends no usable x-request-id, then one is made and echoed', async () => {
    const { app } = appWithLog('info');

    const made = await request(app).get('/ok');
    const refused = await request(app).get('/ok').set('x-request-id', 'spaces are not allowed');

    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(made.body).toEqual({ requestId: made.headers['x-request-id'] });
    expect(refused.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('when a health probe fails, then it is not logged (probes would drown everything else)', async () => {
    const { app, lines } = appWithLog('debug');

    await request(app).get('/healthz');

    expect(lines).toEqual([]);
  });
});
