#!/usr/bin/env node
// Runs the approvals service alone (distributed mode): DATABASE_URL, and KAFKA_BROKERS for Kafka.
import { runStandalone } from '@tracegate/runtime';
import { approvalsService } from './approvals.definition.js';

await runStandalone(approvalsService);
