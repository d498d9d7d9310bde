import { z } from 'zod';
import { AppError } from './errors.js';
import { DeliveryEnvelope, type EventEnvelope, type PublishRequest } from './events.js';
import { currentRequestId, REQUEST_ID_HEADER } from './logging.js';

export interface BusClientOptions {
  /** Base URL of the event bus, e.g. http://localhost:4005 */
  baseUrl: string;
  /** Every call gives up after this long, so a hung bus never hangs our callers. */
  timeoutMs: number;
}

export interface EventPage {
  events: DeliveryEnvelope[];
  /** The highest sequence number the bus has stored. */
  headSeq: number;
}

export interface BusClient {
  /** Resolves once the bus has the event on disk; fails with a 503 AppError when it cannot say so. */
  publish(event: PublishRequest): Promise<EventEnvelope>;
  /** One page of the log, oldest first, strictly after `after`. */
  readEvents(after: number, limit: number): Promise<EventPage>;
}

const EventPageResponse = z.array(DeliveryEnvelope);

export function createBusClient({ baseUrl, timeoutMs }: BusClientOptions): BusClient {
  async function call(pathAndQuery: string, init: RequestInit = {}): Promise<{ response: Response; body: unknown }> {
    const headers = new Headers(init.headers);
    const requestId = currentRequestId();
    if (requestId) headers.set(REQUEST_ID_HEADER, requestId);
    let response: Response;
    try {
      response = await fetch(`${baseUrl}${pathAndQuery}`, { ...init, headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw new AppError({ status: 503, code: 'event_bus_unavailable', message: `The event bus is unreachable: ${describe(error)}`, cause: error });
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '');
      const status = response.status >= 500 ? 503 : 502;
      const code = response.status >= 500 ? 'event_bus_unavailable' : 'event_bus_rejected';
      throw new AppError({ status, code, message: `The event bus answered ${response.status}: ${text.slice(0, 300)}` });
    }
    try {
      return { response, body: await response.json() };
    } catch (error) {
      throw new AppError({ status: 503, code: 'event_bus_unavailable', message: `The event bus answer was cut off: ${describe(error)}`, cause: error });
    }
  }

  return {
    async publish(event) {
      const { body } = await call('/events', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(event),
      });
      return DeliveryEnvelope.parse(body) as EventEnvelope;
    },
    async readEvents(after, limit) {
      const { response, body } = await call(`/events?after=${after}&limit=${limit}`);
      const headSeq = Number(response.headers.get('x-head-seq') ?? Number.NaN);
      const events = EventPageResponse.parse(body);
      return { events, headSeq: Number.isFinite(headSeq) ? headSeq : (events.at(-1)?.seq ?? after) };
    },
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError') return 'timed out';
    const cause = (error as { cause?: { code?: string } }).cause;
    return cause?.code ?? error.message;
  }
  return String(error);
}
