// PostgreSQL wire protocol, the side pg-protocol does not cover: parsing what clients send, serialising it again
// for the target, and the backend messages the gateway writes itself.
export * from './frontend-messages.js';
export {
  DEFAULT_MAX_AUTHENTICATION_MESSAGE_LENGTH,
  DEFAULT_MAX_CONTROL_MESSAGE_LENGTH,
  DEFAULT_MAX_MESSAGE_LENGTH,
  DEFAULT_MAX_STARTUP_MESSAGE_LENGTH,
  FrontendParser,
  type FrontendMessageCallback,
  type FrontendParserOptions,
} from './frontend-parser.js';
export { serializeFrontend } from './frontend-serializer.js';
export {
  BackendMessageCode,
  serializeBackend,
  type EncryptionAnswer,
  type ErrorFields,
  type ErrorSeverity,
  type NoticeFields,
  type NoticeSeverity,
  type ReportFields,
  type TransactionStatus,
} from './backend-serializer.js';
export {
  ProtocolViolation,
  ProtocolViolationCode,
  sqlstateOf,
  type ProtocolViolationSqlstate,
} from './protocol-violation.js';
