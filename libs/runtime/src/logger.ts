import { pino, type Logger, type LevelWithSilent } from 'pino';
import type { LoggerService } from '@nestjs/common';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const satisfies readonly LevelWithSilent[];
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Structured JSON logs, one line per event. Fields that can carry secrets are censored at the
 * logger, so a careless `log.info({ target })` cannot leak a password.
 */
export function createLogger(component: string, level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      // `component` is the process ("tracegate", "tracegate policy"); each service's child logger adds `service`.
      base: { component },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'password',
          'secret',
          'apiKey',
          'token',
          'authorization',
          '*.password',
          '*.secret',
          '*.apiKey',
          '*.token',
          '*.authorization',
          'config.databaseUrl',
          'databaseUrl',
        ],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** Lets Nest's own messages (module init, route mapping, errors) go out as the same JSON lines. */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
  fatal(message: unknown, context?: string) {
    this.logger.fatal({ context }, String(message));
  }
}
