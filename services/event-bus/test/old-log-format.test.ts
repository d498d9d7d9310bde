import { describe, expect, it } from 'vitest';
import { decodeRecords, encodeRecord } from '../src/old-log-format.js';

describe('decodeRecords (the events.log format of older versions)', () => {
  it('when a line has a wrong checksum, then decoding stops before it', () => {
    const good = encodeRecord('{"a":1}');
    const bad = `00000000 {"a":2}\n`;

    const result = decodeRecords(Buffer.from(good + bad + good));

    expect(result).toEqual({ records: ['{"a":1}'], validBytes: good.length, damagedAt: good.length });
  });

  it('when the last line has no newline (a torn write), then it is not a record', () => {
    const good = encodeRecord('{"a":1}');

    const result = decodeRecords(Buffer.from(good + encodeRecord('{"a":2}').slice(0, 12)));

    expect(result).toEqual({ records: ['{"a":1}'], validBytes: good.length, damagedAt: good.length });
  });
});
