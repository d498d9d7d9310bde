import { runEventService } from '@blog/common';
import { createPostsApp } from './app.js';
import { postsProjection } from './domain/posts.js';

await runEventService({ service: 'posts', defaultPort: 4000, spec: postsProjection, createApp: createPostsApp });
