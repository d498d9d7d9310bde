import { runEventService } from '@blog/common';
import { topology } from '@blog/topology';
import { createPostsApp } from './app.js';
import { postsProjection } from './domain/posts.js';

await runEventService({ service: 'posts', defaultPort: topology.posts.port, spec: postsProjection, createApp: createPostsApp });
