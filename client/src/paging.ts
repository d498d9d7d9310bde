import { postsPageLimits } from '@blog/common/contract';

/** Posts per page, for the stream's snapshot and for each older page alike. */
export const pageSize: number = postsPageLimits.defaultLimit;

/** A cursor the page can compare: see `compareCursors`. */
export function isCursor(value: unknown): value is string {
  return typeof value === 'string' && /^\d+$/.test(value);
}

/**
 * Negative when `a` sorts older than `b`, positive when newer, 0 when they are the same place.
 *
 * The contract calls cursors opaque, but the page needs their order to tell a new post from an old
 * one it has not loaded. This relies on the query service's promise that a cursor is a decimal
 * integer string, larger = newer; it is the only place (with `isCursor`) that knows.
 */
export function compareCursors(a: string, b: string): number {
  const difference = BigInt(a) - BigInt(b);
  return difference < 0n ? -1 : difference > 0n ? 1 : 0;
}
