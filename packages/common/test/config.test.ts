import { describe, expect, it } from 'vitest';
import { ConfigError, eventServiceConfigSchema, parseConfig } from '../src/index.js';

describe('parseConfig', () => {
  const schema = eventServiceConfigSchema('posts', 4000);

  it('when nothing is set, then the documented defaults apply', () => {
    const config = parseConfig(schema, {});

    expect(config).toMatchObject({ PORT: 4000, HOST: '127.0.0.1', DATA_DIR: '.data/posts', EVENT_BUS_URL: 'http://localhost:4005', LOG_LEVEL: 'info' });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('when several variables are bad, then one error names every one of them', () => {
    const parse = () => parseConfig(schema, { PORT: 'eighty', EVENT_BUS_URL: 'ftp://bus', LOG_LEVEL: 'loud' });

    expect(parse).toThrow(ConfigError);
    expect(parse).toThrow(/PORT[\s\S]*LOG_LEVEL[\s\S]*EVENT_BUS_URL|PORT[\s\S]*EVENT_BUS_URL[\s\S]*LOG_LEVEL/);
  });

  it('when the bus URL has a trailing slash, then it is normalised', () => {
    expect(parseConfig(schema, { EVENT_BUS_URL: 'http://event-bus-srv:4005/' }).EVENT_BUS_URL).toBe('http://event-bus-srv:4005');
  });
});
