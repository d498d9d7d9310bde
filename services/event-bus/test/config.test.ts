import { describe, expect, it } from 'vitest';
import { loadEventBusConfig } from '../src/config.js';

describe('the bus configuration', () => {
  it('when NATS_USER and NATS_PASSWORD are both set, or neither, then the bus starts with them (or without)', () => {
    const withUser = loadEventBusConfig({ EVENT_STORE: 'nats://nats:4222', NATS_USER: 'event-bus', NATS_PASSWORD: 'from-a-secret' });
    const anonymous = loadEventBusConfig({ EVENT_STORE: 'nats://nats:4222' });

    expect(withUser).toMatchObject({ NATS_USER: 'event-bus', NATS_PASSWORD: 'from-a-secret' });
    expect(anonymous.NATS_USER).toBeUndefined();
    expect(anonymous.NATS_PASSWORD).toBeUndefined();
  });

  it.each([
    ['a user without a password', { NATS_USER: 'event-bus' }, /NATS_PASSWORD: must be set along with NATS_USER/],
    ['a password without a user', { NATS_PASSWORD: 'from-a-secret' }, /NATS_USER: must be set along with NATS_PASSWORD/],
    ['an empty password', { NATS_USER: 'event-bus', NATS_PASSWORD: '' }, /NATS_PASSWORD/],
  ])('when the environment has %s, then the start fails naming the variable', (_case, env, message) => {
    expect(() => loadEventBusConfig({ EVENT_STORE: 'nats://nats:4222', ...env })).toThrow(message);
  });
});
