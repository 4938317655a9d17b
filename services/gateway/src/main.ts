#!/usr/bin/env node
// Runs the gateway service alone (distributed mode): DATABASE_URL, and KAFKA_BROKERS for Kafka.
import { runStandalone } from '@tracegate/runtime';
import { gatewayService } from './gateway.definition.js';

await runStandalone(gatewayService);
