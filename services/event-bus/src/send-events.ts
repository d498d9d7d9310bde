import type { Response } from 'express';
import { drained } from '@blog/common';
import type { EventStore } from './event-store.js';

/** One read from the store: bounded in count and bytes, so an answer of any size needs one page of memory. */
const pageEvents = 1_000;
const pageBytes = 1024 * 1024;

/**
 * Answers the events after `after` up to `last` as one JSON array. A page that holds all of them is
 * sent as it is; a longer answer (the whole log, for a classic `GET /events`) is written page by
 * page, each read only once the socket has taken the one before.
 */
export async function sendEvents(res: Response, store: EventStore, after: number, last: number): Promise<void> {
  let body = '[';
  let separator = '';
  let streaming = false;
  try {
    for (let cursor = after; cursor < last && !res.destroyed; ) {
      const page = await store.read(cursor, Math.min(pageEvents, last - cursor), pageBytes);
      if (page.length === 0) break;
      cursor = page.at(-1)!.seq;
      body += separator + page.map((event) => event.json).join(',');
      separator = ',';
      if (cursor >= last) break;
      if (!streaming) res.type('application/json');
      streaming = true;
      if (!res.write(body)) await drained(res);
      body = '';
    }
  } catch (error) {
    // Once the answer has started, its status is sent: all that is left is to cut it short.
    if (!streaming) throw error;
    res.destroy(error as Error);
    return;
  }
  if (res.destroyed) return;
  if (streaming) res.end(`${body}]`);
  else res.type('application/json').send(`${body}]`);
}
