export { policyService } from './policy.definition.js';
