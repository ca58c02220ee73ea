// Structured logging: pino to stderr (stdout stays free for tables and command output).
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({ name: options.name ?? 'infaas', level: options.level ?? 'info' }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything: for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
