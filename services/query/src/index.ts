import { runEventService } from '@blog/common';
import { topology } from '@blog/topology';
import { createQueryApp } from './app.js';
import { queryConfig } from './config.js';
import { queryProjection } from './domain/query-view.js';

await runEventService({ service: 'query', defaultPort: topology.query.port, extraConfig: queryConfig, spec: queryProjection, createApp: createQueryApp });
