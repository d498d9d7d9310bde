import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import { AppError } from './errors.js';
import type { Logger } from './logging.js';

/**
 * Internal requests (the bus's deliveries, publishing to the bus, reading its log) carry an
 * HMAC-SHA256 signature made with the secret every service shares (EVENT_BUS_SECRET). The signature
 * covers a timestamp, a one-time nonce, the receiver it is meant for, the method and path, and the
 * body: a forged request fails the signature, a replayed one is refused by its nonce or its age, and
 * one captured on its way to another service is refused by its audience.
 */

export const signatureHeaders = {
  timestamp: 'x-blog-timestamp',
  nonce: 'x-blog-nonce',
  signature: 'x-blog-signature',
} as const;

/** `openssl rand -hex 32` gives a good one. Unset means unsigned (the service warns at start). */
export const busSecretSchema = z.preprocess(
  (value) => (value === '' ? undefined : value),
  z.string().min(32, 'must be at least 32 characters (for example: openssl rand -hex 32)').optional(),
);

export interface SignedRequest {
  method: string;
  /** Path and query string, as the receiver sees them. */
  target: string;
  /** Who the request is for: `event-bus`, or the subscriber's name. */
  audience: string;
  body: string | Buffer;
}

/** How far a timestamp may be from the receiver's clock; nonces are remembered for twice this. */
const MAX_CLOCK_SKEW_MS = 15_000;

function signatureOf(secret: string, timestamp: string, nonce: string, request: SignedRequest): string {
  return createHmac('sha256', secret)
    .update(`v1\n${timestamp}\n${nonce}\n${request.audience}\n${request.method.toUpperCase()} ${request.target}\n`)
    .update(request.body)
    .digest('hex');
}

/** The headers that authenticate `request`. */
export function signRequest(secret: string, request: SignedRequest, now = Date.now()): Record<string, string> {
  const timestamp = String(now);
  const nonce = randomBytes(16).toString('hex');
  return {
    [signatureHeaders.timestamp]: timestamp,
    [signatureHeaders.nonce]: nonce,
    [signatureHeaders.signature]: `v1=${signatureOf(secret, timestamp, nonce, request)}`,
  };
}

const unauthorized = (message: string) => new AppError({ status: 401, code: 'unauthorized', message });

/** Checks signatures meant for one audience, and remembers nonces long enough to refuse replays. */
export class SignatureVerifier {
  /** nonce → when it may be forgotten; insertion order is expiry order, so pruning reads the front. */
  private readonly seenNonces = new Map<string, number>();

  constructor(
    private readonly secret: string,
    private readonly audience: string,
  ) {}

  /**
   * Throws a 401 AppError unless the headers could belong to a request signed now: all present, the
   * timestamp fresh, the nonce well formed. Needs no body, so a request that fails it is refused
   * before its body is read.
   */
  checkHeaders(headers: IncomingHttpHeaders, now = Date.now()): { timestamp: string; nonce: string; signature: string } {
    const timestamp = headers[signatureHeaders.timestamp];
    const nonce = headers[signatureHeaders.nonce];
    const signature = headers[signatureHeaders.signature];
    if (typeof timestamp !== 'string' || typeof nonce !== 'string' || typeof signature !== 'string') {
      throw unauthorized(`This internal route needs a signed request (${Object.values(signatureHeaders).join(', ')})`);
    }
    if (!/^\d{1,15}$/.test(timestamp) || Math.abs(now - Number(timestamp)) > MAX_CLOCK_SKEW_MS) {
      throw unauthorized(`The request's timestamp is missing or more than ${MAX_CLOCK_SKEW_MS / 1000} s away from this server's clock`);
    }
    if (!/^[0-9a-f]{32}$/.test(nonce)) throw unauthorized('The request nonce must be 32 lowercase hex digits');
    return { timestamp, nonce, signature };
  }

  /** Throws a 401 AppError unless the request is signed for this audience, fresh and first seen. */
  verify(headers: IncomingHttpHeaders, request: Omit<SignedRequest, 'audience'>, now = Date.now()): void {
    const { timestamp, nonce, signature } = this.checkHeaders(headers, now);
    const expected = Buffer.from(`v1=${signatureOf(this.secret, timestamp, nonce, { ...request, audience: this.audience })}`);
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw unauthorized(`The request signature is not valid for ${this.audience} (wrong secret, altered request, or meant for another service)`);
    }
    this.forgetExpired(now);
    if (this.seenNonces.has(nonce)) throw unauthorized('This request was already received once (replayed nonce)');
    this.seenNonces.set(nonce, now + 2 * MAX_CLOCK_SKEW_MS);
  }

  private forgetExpired(now: number): void {
    for (const [nonce, expiresAt] of this.seenNonces) {
      if (expiresAt > now) break;
      this.seenNonces.delete(nonce);
    }
  }
}

/**
 * Body handling for an internal route: reads the raw body (up to `limitBytes`), checks its signature
 * when a verifier is given, then parses it as JSON into `req.body` (undefined when empty). Headers
 * that cannot be a valid signature are refused first: an unsigned caller cannot make this process
 * buffer and hash megabytes (Node discards the unread body as it arrives).
 */
export function signedJson(verifier: SignatureVerifier | undefined, limitBytes: number): RequestHandler {
  const readRaw = express.raw({ type: () => true, limit: limitBytes });
  return (req, res, next) => {
    try {
      verifier?.checkHeaders(req.headers);
    } catch (refused) {
      next(refused);
      return;
    }
    readRaw(req, res, (error?: unknown) => {
      if (error) return next(error);
      try {
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        verifier?.verify(req.headers, { method: req.method, target: req.originalUrl, body: raw });
        req.body = raw.length === 0 ? undefined : parseJson(raw);
        next();
      } catch (failure) {
        next(failure);
      }
    });
  };
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new AppError({ status: 400, code: 'malformed_json', message: `The body is not valid JSON: ${(error as Error).message}` });
  }
}

/** Said once at start: running without the secret is for trying things out, never for a network. */
export function warnIfUnsigned(secret: string | undefined, logger: Logger): void {
  if (!secret) logger.warn('EVENT_BUS_SECRET is not set: internal requests are neither signed nor checked; set the same secret on the bus and every service');
}
