#!/usr/bin/env node
// Runs the policy service alone (distributed mode): DATABASE_URL, and KAFKA_BROKERS for Kafka.
import { runStandalone } from '@tracegate/runtime';
import { policyService } from './policy.definition.js';

await runStandalone(policyService);
