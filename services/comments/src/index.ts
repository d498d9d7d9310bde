import { runEventService } from '@blog/common';
import { createCommentsApp } from './app.js';
import { commentsProjection } from './domain/comments.js';

await runEventService({ service: 'comments', defaultPort: 4001, spec: commentsProjection, createApp: createCommentsApp });
