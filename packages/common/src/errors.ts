import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import type { Logger } from 'pino';

/** A failure the service expects and can explain to the caller: it carries its own HTTP status. */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor({ status, code, message, cause, details }: { status: number; code: string; message: string; cause?: unknown; details?: unknown }) {
    super(message, { cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError({ status: 404, code: 'not_found', message: `No route for ${req.method} ${req.path}` }));
};

/** Codes for the errors that body-parser and the router raise with their own 4xx status. */
const httpErrorCodes: Record<string, string> = {
  'entity.parse.failed': 'malformed_json',
  'entity.too.large': 'payload_too_large',
  'encoding.unsupported': 'unsupported_encoding',
  'charset.unsupported': 'unsupported_charset',
  'request.aborted': 'request_aborted',
};

/**
 * The one place that turns an error into a response. Everything is JSON `{error: {code, message}}`;
 * only a 500 is logged with its stack, and no internal detail ever reaches the caller.
 */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const { status, body } = describeError(error);
    if (status >= 500) logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
    else logger.debug({ code: body.error.code, status }, body.error.message);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(status).json(body);
  };
}

export function describeError(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof AppError) {
    const details = error.details === undefined ? {} : { details: error.details };
    return { status: error.status, body: { error: { code: error.code, message: error.message, ...details } } };
  }
  if (error instanceof ZodError) {
    const details = error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
    const message = details.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message)).join('; ');
    return { status: 400, body: { error: { code: 'invalid_request', message, details } } };
  }
  const status = httpStatusOf(error);
  if (status !== undefined && status >= 400 && status < 500) {
    const type = (error as { type?: unknown }).type;
    const code = (typeof type === 'string' && httpErrorCodes[type]) || (status === 413 ? 'payload_too_large' : 'bad_request');
    const message = error instanceof Error ? error.message : 'Bad request';
    return { status, body: { error: { code, message } } };
  }
  return { status: 500, body: { error: { code: 'internal', message: 'Internal server error' } } };
}

function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  const value = status ?? statusCode;
  return typeof value === 'number' ? value : undefined;
}
