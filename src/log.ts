import { pino, type Logger } from 'pino';

export type { Logger };

// Secrets must never reach the logs: every field that can hold one is censored
// wherever it appears in a logged object.
const SECRET_KEYS = ['token', 'botToken', 'appToken', 'signingSecret', 'privateKey', 'key', 'password', 'authorization'];

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: NodeJS.WritableStream): Logger {
  const paths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  return pino(
    {
      level,
      base: { app: 'etcd-medic' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths, censor: '[redacted]' },
    },
    destination ?? pino.destination(1),
  );
}
