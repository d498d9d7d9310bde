import { createServiceApp, receiveEvents, type EventServiceDeps } from '@blog/common';
import type { Express } from 'express';
import type { ModerationState } from './domain/moderation.js';

/** Moderation has no public routes: it only hears the log (and answers health, readiness, metrics). */
export function createModerationApp(deps: EventServiceDeps<ModerationState>): Express {
  const { logger, metrics, lifecycle } = deps;
  return createServiceApp({ logger, metrics, lifecycle }, () => {}, receiveEvents(deps));
}
