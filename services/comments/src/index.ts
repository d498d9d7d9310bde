import { runEventService } from '@blog/common';
import { topology } from '@blog/topology';
import { createCommentsApp } from './app.js';
import { commentsProjection } from './domain/comments.js';

await runEventService({ service: 'comments', defaultPort: topology.comments.port, spec: commentsProjection, createApp: createCommentsApp });
