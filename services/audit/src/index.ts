export { auditService } from './audit.definition.js';
export { AUDIT_CONFIG_SCHEMA, type AuditConfig } from './audit.config.js';
