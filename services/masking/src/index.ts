export { maskingService } from './masking.definition.js';
