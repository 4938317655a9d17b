export { approvalsService } from './approvals.definition.js';
