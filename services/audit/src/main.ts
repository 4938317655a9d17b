#!/usr/bin/env node
// Runs the audit service alone (distributed mode): DATABASE_URL, and KAFKA_BROKERS for Kafka.
import { runStandalone } from '@tracegate/runtime';
import { auditService } from './audit.definition.js';

await runStandalone(auditService);
