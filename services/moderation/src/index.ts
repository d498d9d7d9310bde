import { runEventService } from '@blog/common';
import { topology } from '@blog/topology';
import { createModerationApp } from './app.js';
import { moderationConfig } from './config.js';
import { createModerationProjection } from './domain/moderation.js';

await runEventService({
  service: 'moderation',
  defaultPort: topology.moderation.port,
  extraConfig: moderationConfig,
  spec: (config) => createModerationProjection(config.BLOCKED_WORDS),
  createApp: createModerationApp,
});
