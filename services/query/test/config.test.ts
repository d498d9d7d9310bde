import { ConfigError, eventServiceConfigSchema, parseConfig } from '@blog/common';
import { describe, expect, it } from 'vitest';
import { queryConfig } from '../src/config.js';

describe('query configuration', () => {
  // What runEventService validates at start: the common settings and query's own, together.
  const schema = eventServiceConfigSchema('query', 4002).extend(queryConfig.shape);

  it('when MAX_LIVE_STREAMS is not set, then 1,000 streams are allowed', () => {
    expect(parseConfig(schema, {}).MAX_LIVE_STREAMS).toBe(1_000);
  });

  it.each(['0', '-5', 'many', '1.5'])('when MAX_LIVE_STREAMS is %s, then the start fails naming it', (value) => {
    const parse = () => parseConfig(schema, { MAX_LIVE_STREAMS: value });

    expect(parse).toThrow(ConfigError);
    expect(parse).toThrow(/MAX_LIVE_STREAMS/);
  });
});
