import { type Logger, pino } from 'pino';
import type { LogLevel } from '../config.ts';

/** Structured JSON logs on stdout; secrets that could reach a log line are redacted. */
export function createLogger(level: LogLevel | 'silent'): Logger {
  return pino({
    level,
    base: { service: 'synk-server' },
    redact: [
      'req.headers.authorization',
      'password',
      'newPassword',
      'currentPassword',
      'refreshToken',
      'token',
    ],
  });
}
