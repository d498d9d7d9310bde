import { signRequest } from '@blog/common';
import { testBusSecret } from './processes.js';

/**
 * fetch, signed with the test stacks' EVENT_BUS_SECRET the way our services sign: for the bus's
 * internal routes (audience `event-bus`), or a delivery to a service (audience: its name).
 */
export function signedFetch(url: string, { method = 'GET', body = '', headers = {}, audience = 'event-bus', secret = testBusSecret }: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string>; audience?: string; secret?: string } = {}): Promise<Response> {
  const { pathname, search } = new URL(url);
  return fetch(url, {
    method,
    headers: { ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...headers, ...signRequest(secret, { method, target: `${pathname}${search}`, audience, body }) },
    body: method === 'POST' ? body : undefined,
    signal: AbortSignal.timeout(15_000),
  });
}
