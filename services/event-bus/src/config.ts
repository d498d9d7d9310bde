import { baseConfigSchema, busSecretSchema, parseConfig, timeoutMsSchema } from '@blog/common';
import { subscribersValue, topology } from '@blog/topology';
import { z } from 'zod';

export interface Subscriber {
  name: string;
  url: string;
}

// Every subscriber of the topology, on its default port on this machine (as `pnpm start` runs them).
const classicSubscribers = subscribersValue((component) => `http://localhost:${component.port}`);

/** `SUBSCRIBERS=name=url,name=url`: who gets every event. An empty value means nobody. */
export const subscribersSchema = z
  .string()
  .default(classicSubscribers)
  .transform((value, ctx): Subscriber[] => {
    const subscribers: Subscriber[] = [];
    for (const item of value.split(',').map((part) => part.trim()).filter(Boolean)) {
      const match = /^([a-z0-9][a-z0-9-]{0,62})=(https?:\/\/\S+)$/.exec(item);
      if (!match || !URL.canParse(match[2]!)) {
        ctx.addIssue({ code: 'custom', message: `"${item}" is not name=http(s)-url (name: lowercase letters, digits, -)` });
        continue;
      }
      if (subscribers.some((s) => s.name === match[1])) ctx.addIssue({ code: 'custom', message: `subscriber "${match[1]}" is listed twice` });
      subscribers.push({ name: match[1]!, url: match[2]! });
    }
    return subscribers;
  });

/** `EVENT_STORE`: `file` (the default, event-bus.db under DATA_DIR) or `nats://host:port[,nats://...]` (JetStream). */
export const eventStoreSchema = z
  .string()
  .default('file')
  .transform((value, ctx): { kind: 'file' } | { kind: 'jetstream'; servers: string[] } => {
    if (value === 'file') return { kind: 'file' };
    const servers = value.split(',').map((part) => part.trim()).filter(Boolean);
    if (servers.length === 0 || !servers.every((server) => /^nats:\/\/[^\s/]+(:\d+)?\/?$/.test(server))) {
      ctx.addIssue({ code: 'custom', message: `must be "file" or nats://host:port[,nats://host:port...], not "${value}"` });
      return z.NEVER;
    }
    return { kind: 'jetstream', servers };
  });

export const eventBusConfigSchema = baseConfigSchema('event-bus', topology['event-bus'].port).extend({
  EVENT_STORE: eventStoreSchema,
  EVENT_STREAM: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -').default('BLOG_EVENTS'),
  EVENT_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  // The bus's user on the NATS servers (EVENT_STORE=nats://...): both or neither. The servers of
  // the jetstream profiles let only this user publish to and read the stream.
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().min(1).optional(),
  SUBSCRIBERS: subscribersSchema,
  // Shared with every service: deliveries are signed with it, publishing and reading must be.
  EVENT_BUS_SECRET: busSecretSchema,
  // A subscriber that has not answered by then is retried later; the others never wait for it.
  DELIVERY_TIMEOUT_MS: timeoutMsSchema(5_000),
  RETRY_MAX_DELAY_MS: timeoutMsSchema(5_000),
  // Cursors are saved this often; after a crash a subscriber may get (and ignore) a few events again.
  CURSOR_FLUSH_MS: timeoutMsSchema(250),
}).superRefine((config, ctx) => {
  if ((config.NATS_USER === undefined) === (config.NATS_PASSWORD === undefined)) return;
  const missing = config.NATS_USER === undefined ? 'NATS_USER' : 'NATS_PASSWORD';
  ctx.addIssue({ code: 'custom', path: [missing], message: `must be set along with ${missing === 'NATS_USER' ? 'NATS_PASSWORD' : 'NATS_USER'}` });
});
export type EventBusConfig = z.infer<typeof eventBusConfigSchema>;

export const loadEventBusConfig = (env: NodeJS.ProcessEnv = process.env) => parseConfig(eventBusConfigSchema, env);
