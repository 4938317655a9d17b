import { ALL_TOPICS, KafkaEventLog, PostgresEventLog, type EventLog } from '@tracegate/events';
import type { Logger } from './logger.js';

/**
 * Kafka when KAFKA_BROKERS is set (the distributed mode), otherwise the PostgreSQL event log in
 * the service's database (the embedded all-in-one default). Both are the same port.
 */
export async function openEventLog(options: {
  databaseUrl: string;
  kafkaBrokers: readonly string[] | undefined;
  clientId: string;
  logger: Logger;
}): Promise<EventLog> {
  const log: EventLog = options.kafkaBrokers
    ? new KafkaEventLog({
        brokers: options.kafkaBrokers,
        clientId: options.clientId.replace(/\s+/g, '-'),
        logLevel: 'warn',
        log: (line) => options.logger[line.level]({ source: line.source, ...line.extra }, line.message),
      })
    : await PostgresEventLog.connect(options.databaseUrl);
  await log.ensureTopics(ALL_TOPICS);
  options.logger.info({ eventLog: log.kind }, `event log: ${log.kind}`);
  return log;
}
