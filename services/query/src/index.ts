import { runEventService } from '@blog/common';
import { createQueryApp } from './app.js';
import { queryConfig } from './config.js';
import { queryProjection } from './domain/query-view.js';

await runEventService({ service: 'query', defaultPort: 4002, extraConfig: queryConfig, spec: queryProjection, createApp: createQueryApp });
