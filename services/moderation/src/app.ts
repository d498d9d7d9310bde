import { createServiceApp, receiveEvents, type EventServiceDeps } from '@blog/common';
import type { Express } from 'express';
import type { ModerationState } from './domain/moderation.js';

export function createModerationApp({ logger, metrics, lifecycle, projection }: EventServiceDeps<ModerationState>): Express {
  return createServiceApp({ logger, metrics, lifecycle }, (app) => {
    app.post('/events', receiveEvents(projection));
  });
}
