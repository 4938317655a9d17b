#!/usr/bin/env node
// Runs the masking service alone (distributed mode): DATABASE_URL, and KAFKA_BROKERS for Kafka.
import { runStandalone } from '@tracegate/runtime';
import { maskingService } from './masking.definition.js';

await runStandalone(maskingService);
