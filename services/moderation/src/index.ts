import { runEventService } from '@blog/common';
import { createModerationApp } from './app.js';
import { moderationConfig } from './config.js';
import { createModerationProjection } from './domain/moderation.js';

await runEventService({
  service: 'moderation',
  defaultPort: 4003,
  extraConfig: moderationConfig,
  spec: (config) => createModerationProjection(config.BLOCKED_WORDS),
  createApp: createModerationApp,
});
