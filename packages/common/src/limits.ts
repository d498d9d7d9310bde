import { z } from 'zod';

import { limits } from './contract.js';

/** Ids of posts and comments: what our services generate, and nothing that can hurt a path or a map. */
export const entityId = z
  .string()
  .regex(new RegExp(`^[A-Za-z0-9_-]{1,${limits.idMaxLength}}$`), `must be 1-${limits.idMaxLength} letters, digits, _ or -`);

const visibleText = (field: string, max: number) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? `${field} is required` : `${field} must be a string`) })
    .trim()
    .min(1, `${field} must not be empty`)
    .max(max, `${field} must be at most ${max} characters`);

export const postTitle = visibleText('title', limits.titleMaxLength);
export const commentContent = visibleText('content', limits.contentMaxLength);
