#!/usr/bin/env node
// Runs the broker service alone (distributed mode): DATABASE_URL, and KAFKA_BROKERS for Kafka.
import { runStandalone } from '@tracegate/runtime';
import { brokerService } from './broker.definition.js';

await runStandalone(brokerService);
