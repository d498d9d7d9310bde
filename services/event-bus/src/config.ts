import { baseConfigSchema, busSecretSchema, parseConfig, timeoutMsSchema } from '@blog/common';
import { z } from 'zod';

export interface Subscriber {
  name: string;
  url: string;
}

const classicSubscribers = 'posts=http://localhost:4000/events,comments=http://localhost:4001/events,query=http://localhost:4002/events,moderation=http://localhost:4003/events';

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

export const eventBusConfigSchema = baseConfigSchema('event-bus', 4005).extend({
  SUBSCRIBERS: subscribersSchema,
  // Shared with every service: deliveries are signed with it, publishing and reading must be.
  EVENT_BUS_SECRET: busSecretSchema,
  // A subscriber that has not answered by then is retried later; the others never wait for it.
  DELIVERY_TIMEOUT_MS: timeoutMsSchema(5_000),
  RETRY_MAX_DELAY_MS: timeoutMsSchema(5_000),
  // Cursors are saved this often; after a crash a subscriber may get (and ignore) a few events again.
  CURSOR_FLUSH_MS: timeoutMsSchema(250),
});
export type EventBusConfig = z.infer<typeof eventBusConfigSchema>;

export const loadEventBusConfig = (env: NodeJS.ProcessEnv = process.env) => parseConfig(eventBusConfigSchema, env);
