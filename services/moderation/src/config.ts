import { z } from 'zod';

export const moderationConfig = z.object({
  /** Comma-separated words; a comment containing any of them (any case) is rejected. */
  BLOCKED_WORDS: z
    .string()
    .default('orange')
    .transform((value) => value.split(',').map((word) => word.trim().toLowerCase()).filter(Boolean))
    .refine((words) => words.every((word) => word.length <= 100), 'each blocked word must be at most 100 characters'),
});
