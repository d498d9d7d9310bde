import { Agent, request } from 'undici';
import { z } from 'zod';
import { AppError } from './errors.js';
import { batchLimits, DeliveryEnvelope, headSeqHeader, logIdHeader, type EventEnvelope, type PublishRequest } from './events.js';
import { currentRequestId, REQUEST_ID_HEADER } from './logging.js';
import { signRequest } from './signing.js';

export interface BusClientOptions {
  /** Base URL of the event bus, e.g. http://localhost:4005 */
  baseUrl: string;
  /** Every call gives up after this long, so a hung bus never hangs our callers. */
  timeoutMs: number;
  /** EVENT_BUS_SECRET: signs every request; unset sends them unsigned. */
  secret?: string | undefined;
  /**
   * At most this many `publish` calls wait for their batch; more are refused with 503
   * `publish_queue_full` at once. Events are small (bounded by their schemas), so this bounds memory
   * while the bus is slow, instead of letting callers pile up until the process runs out of it.
   */
  maxQueuedPublishes?: number;
}

export interface EventPage {
  events: DeliveryEnvelope[];
  /** The highest sequence number the bus has stored. */
  headSeq: number;
  /** The log the page comes from (see `logIdHeader`); undefined from a bus that does not say. */
  logId: string | undefined;
}

export interface BusClient {
  /**
   * Resolves once the bus has the event on disk; fails with a 503 AppError when it cannot say so
   * (or when `maxQueuedPublishes` wait already), with a BusRefusedError when the bus refuses it.
   */
  publish(event: PublishRequest): Promise<EventEnvelope>;
  /** Publishes several events in one request, stored in this order; all or none are confirmed. */
  publishAll(events: readonly PublishRequest[]): Promise<EventEnvelope[]>;
  /**
   * One page of the log, oldest first, strictly after `after`. With `waitMs`, a long poll: when
   * nothing is there yet the bus answers as soon as something is, or with an empty page.
   */
  readEvents(after: number, limit: number, options?: { waitMs?: number; signal?: AbortSignal }): Promise<EventPage>;
  close(): Promise<void>;
}

/**
 * The bus answered 4xx: it is up and refuses the request itself, so sending it again as it is gets
 * the same answer. The caller sees a 502; `busStatus` and `answer` say what the bus said.
 */
export class BusRefusedError extends AppError {
  /** The bus's own `{ error: { code, message, details } }`, when it sent one. */
  readonly answer: { code?: string; message?: string; details?: unknown } | undefined;
  /** The log the bus serves (its `logIdHeader`), when it said. */
  readonly logId: string | undefined;

  constructor(
    readonly busStatus: number,
    text: string,
    headers: Record<string, unknown>,
  ) {
    super({ status: 502, code: 'event_bus_rejected', message: `The event bus answered ${busStatus}: ${text.slice(0, 300)}` });
    this.answer = BusErrorAnswer.safeParse(parseJson(text)).data?.error;
    const logId = headers[logIdHeader];
    this.logId = typeof logId === 'string' ? logId : undefined;
  }
}

const BusErrorAnswer = z.object({ error: z.object({ code: z.string().optional(), message: z.string().optional(), details: z.unknown() }) });

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const EventPageResponse = z.array(DeliveryEnvelope);
/**
 * Publishes that overlap are sent together; this many batches may be on their way at once. One:
 * whatever arrives during a round trip goes out as the next batch, so batches grow with the load
 * (two in flight halved them, and each request costs far more than each event in it).
 */
const PUBLISH_REQUESTS_IN_FLIGHT = 1;

interface QueuedPublish {
  event: PublishRequest;
  bytes: number;
  resolve: (envelope: EventEnvelope) => void;
  reject: (error: unknown) => void;
}

export const defaultMaxQueuedPublishes = 10 * batchLimits.maxEvents;

export function createBusClient({ baseUrl, timeoutMs, secret, maxQueuedPublishes = defaultMaxQueuedPublishes }: BusClientOptions): BusClient {
  // undici's own API: much less overhead per request than fetch, and a bounded keep-alive pool.
  const dispatcher = new Agent({ connections: 32, keepAliveTimeout: 4_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const queue: QueuedPublish[] = [];
  let inFlight = 0;

  async function call(method: 'GET' | 'POST', target: string, body = '', { extraMs = 0, signal }: { extraMs?: number; signal?: AbortSignal | undefined } = {}): Promise<{ headers: Record<string, unknown>; body: unknown }> {
    const headers: Record<string, string> = method === 'POST' ? { 'content-type': 'application/json' } : {};
    const requestId = currentRequestId();
    if (requestId) headers[REQUEST_ID_HEADER] = requestId;
    if (secret) Object.assign(headers, signRequest(secret, { method, target, audience: 'event-bus', body }));
    let statusCode: number;
    let responseHeaders: Record<string, unknown>;
    let text: string;
    try {
      const deadline = AbortSignal.timeout(timeoutMs + extraMs);
      const response = await request(`${baseUrl}${target}`, {
        method,
        headers,
        body: method === 'POST' ? body : undefined,
        dispatcher,
        headersTimeout: timeoutMs + extraMs,
        signal: signal ? AbortSignal.any([deadline, signal]) : deadline,
      });
      statusCode = response.statusCode;
      responseHeaders = response.headers;
      text = await response.body.text();
    } catch (error) {
      throw new AppError({ status: 503, code: 'event_bus_unavailable', message: `The event bus is unreachable: ${describe(error)}`, cause: error });
    }
    if (statusCode >= 500) throw new AppError({ status: 503, code: 'event_bus_unavailable', message: `The event bus answered ${statusCode}: ${text.slice(0, 300)}` });
    if (statusCode < 200 || statusCode >= 300) throw new BusRefusedError(statusCode, text, responseHeaders);
    try {
      return { headers: responseHeaders, body: JSON.parse(text) };
    } catch (error) {
      throw new AppError({ status: 503, code: 'event_bus_unavailable', message: `The event bus answer was cut off: ${describe(error)}`, cause: error });
    }
  }

  async function publishAll(events: readonly PublishRequest[]): Promise<EventEnvelope[]> {
    const { body } = await call('POST', '/events', JSON.stringify(events));
    const stored = EventPageResponse.parse(body) as EventEnvelope[];
    if (stored.length !== events.length) throw new AppError({ status: 503, code: 'event_bus_unavailable', message: 'The event bus confirmed a different number of events' });
    return stored;
  }

  /** Sends whatever queued up while earlier batches were on their way, as one batch. */
  function sendQueued(): void {
    while (inFlight < PUBLISH_REQUESTS_IN_FLIGHT && queue.length > 0) {
      const batch: QueuedPublish[] = [];
      let bytes = 0;
      while (queue.length > 0 && batch.length < batchLimits.maxEvents && (batch.length === 0 || bytes + queue[0]!.bytes <= batchLimits.maxBytes)) {
        const next = queue.shift()!;
        batch.push(next);
        bytes += next.bytes;
      }
      inFlight += 1;
      publishAll(batch.map((item) => item.event))
        .then(
          (stored) => batch.forEach((item, index) => item.resolve(stored[index]!)),
          (error: unknown) => batch.forEach((item) => item.reject(error)),
        )
        .finally(() => {
          inFlight -= 1;
          sendQueued();
        });
    }
  }

  return {
    publish(event) {
      if (queue.length >= maxQueuedPublishes) {
        return Promise.reject(
          new AppError({ status: 503, code: 'publish_queue_full', message: `${queue.length} events are already waiting to be sent to the event bus; try again in a moment` }),
        );
      }
      return new Promise((resolve, reject) => {
        queue.push({ event, bytes: JSON.stringify(event).length, resolve, reject });
        sendQueued();
      });
    },
    publishAll,
    async readEvents(after, limit, { waitMs, signal } = {}) {
      const wait = waitMs ? `&wait=${waitMs}` : '';
      const { headers, body } = await call('GET', `/events?after=${after}&limit=${limit}${wait}`, '', { extraMs: waitMs ?? 0, signal });
      const headSeq = Number(headers[headSeqHeader] ?? Number.NaN);
      const logId = headers[logIdHeader];
      const events = EventPageResponse.parse(body);
      return { events, headSeq: Number.isFinite(headSeq) ? headSeq : (events.at(-1)?.seq ?? after), logId: typeof logId === 'string' ? logId : undefined };
    },
    close: () => dispatcher.close(),
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'timed out';
    const { code, cause } = error as { code?: string; cause?: { code?: string } };
    return cause?.code ?? code ?? error.message;
  }
  return String(error);
}
