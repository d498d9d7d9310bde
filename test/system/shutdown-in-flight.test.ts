import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { startStack, waitFor, type ServiceProcess, type Stack } from '@blog/testing';
import { commentsOfPost, createPost, postsOfPostsService, unique } from './helpers.js';

/**
 * Graceful shutdown with a request in flight, the way it happens behind a proxy or under the bus's
 * own deliveries: the client holds a keep-alive connection, and SIGTERM arrives while its request
 * is being served. The request must still get its answer, and the process must then exit 0 well
 * within its shutdown timeout (SHUTDOWN_TIMEOUT_MS, 8 s by default).
 */

let stack: Stack;
let agent: http.Agent;

beforeAll(async () => {
  stack = await startStack();
}, 60_000);

afterAll(async () => {
  agent?.destroy();
  await stack?.destroy();
}, 60_000);

beforeEach(() => {
  // A fresh keep-alive agent per test, like any HTTP client or proxy in front of the service.
  agent?.destroy();
  agent = new http.Agent({ keepAlive: true });
  onTestFailed(() => {
    for (const service of stack.all) console.error(`----- ${service.name} (${service.running ? 'running' : 'not running'}) output:\n${service.output()}`);
  });
});

interface InFlight {
  /** Resolves once the server has read the request's headers (it answered 100 Continue). */
  accepted: Promise<void>;
  /** Sends the body and resolves with the answer. */
  finish(): Promise<{ status: number; body: unknown }>;
}

/** A JSON POST whose body is held back until `finish()`, so it is provably in flight meanwhile. */
function heldBackPost(url: string, payload: unknown): InFlight {
  const bytes = Buffer.from(JSON.stringify(payload));
  const accepted = Promise.withResolvers<void>();
  const answered = Promise.withResolvers<{ status: number; body: unknown }>();
  const request = http.request(url, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': String(bytes.length), expect: '100-continue' },
    timeout: 15_000,
  });
  request.on('continue', () => accepted.resolve());
  request.on('timeout', () => request.destroy(new Error('request timed out')));
  request.on('error', (error) => {
    accepted.reject(error);
    answered.reject(error);
  });
  request.on('response', (response) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => (text += chunk));
    response.on('error', answered.reject);
    response.on('end', () => answered.resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as unknown }));
  });
  request.flushHeaders();
  accepted.promise.catch(() => undefined);
  return {
    accepted: accepted.promise,
    finish: () => {
      request.end(bytes);
      return answered.promise;
    },
  };
}

/** Whether the service still accepts new connections (a fresh TCP connect, never a pooled one). */
function isListening(service: ServiceProcess): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(service.port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** SIGTERM with `inFlight` under way; the request is completed only once the server has stopped listening. */
async function stopWith(service: ServiceProcess, inFlight: InFlight) {
  await inFlight.accepted;
  const startedAt = Date.now();
  const exited = service.stop();
  await waitFor(async () => ((await isListening(service)) ? undefined : true), { timeoutMs: 5_000, what: `${service.name} to stop listening` });
  const answer = await inFlight.finish();
  const exitCode = await exited;
  return { answer, exitCode, stopMs: Date.now() - startedAt };
}

describe('graceful shutdown with a request in flight', () => {
  it('when posts gets SIGTERM while a post creation is in flight, then the post is created (201), posts exits 0 within 5 s and the post is there after the restart', async () => {
    // Arrange
    const title = unique('in flight at SIGTERM');
    const inFlight = heldBackPost(`${stack.posts.url}/posts/create`, { title });

    // Act
    const { answer, exitCode, stopMs } = await stopWith(stack.posts, inFlight);
    await stack.posts.start();

    // Assert
    expect(answer).toEqual({ status: 201, body: { id: expect.any(String) as string, title } });
    expect({ exitCode, stoppedWithin5s: stopMs < 5_000 }, `stopped after ${stopMs} ms`).toEqual({ exitCode: 0, stoppedWithin5s: true });
    const { id } = answer.body as { id: string };
    expect((await postsOfPostsService(stack))[id]).toEqual({ id, title });
  });

  it('when comments gets SIGTERM while a comment creation is in flight, then the comment is created (201), comments exits 0 within 5 s and the comment is there after the restart', async () => {
    // Arrange
    const { body: post } = await createPost(stack, unique('Shutdown'));
    const content = unique('in flight at SIGTERM');
    const inFlight = heldBackPost(`${stack.comments.url}/posts/${post.id}/comments`, { content });

    // Act
    const { answer, exitCode, stopMs } = await stopWith(stack.comments, inFlight);
    await stack.comments.start();

    // Assert
    expect(answer).toEqual({ status: 201, body: [{ id: expect.any(String) as string, content, status: 'pending' }] });
    expect({ exitCode, stoppedWithin5s: stopMs < 5_000 }, `stopped after ${stopMs} ms`).toEqual({ exitCode: 0, stoppedWithin5s: true });
    const [{ id }] = answer.body as [{ id: string }];
    expect((await commentsOfPost(stack, post.id)).map((comment) => comment.id)).toEqual([id]);
  });
});
