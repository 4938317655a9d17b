export { auditService } from './audit.definition.js';
