export { brokerService } from './broker.definition.js';
