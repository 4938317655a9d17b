export { brokerService } from './broker.definition.js';
export { BROKER_CONFIG_SCHEMA, parseKeyring, type BrokerConfig, type Keyring } from './broker.config.js';
export { INTERNAL_TOKEN_METADATA } from './controllers/internal-token.guard.js';
