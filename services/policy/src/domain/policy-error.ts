/** The policy module's one error class; controllers map each code to a gRPC status. */
export enum PolicyErrorCode {
  /** A Decide/Explain request lacks something a decision needs (identity, command text…). */
  InvalidRequest = 'POLICY_INVALID_REQUEST',
  /** A policy document that does not validate; the message names every bad field. */
  InvalidDocument = 'POLICY_INVALID_DOCUMENT',
  /** The policy file could not be read. */
  DocumentUnreadable = 'POLICY_DOCUMENT_UNREADABLE',
  /** The call did not carry the internal token. */
  Unauthenticated = 'POLICY_UNAUTHENTICATED',
  /** The event log did not record a policy activation, so the policy was not put in force. */
  EventLogUnavailable = 'POLICY_EVENT_LOG_UNAVAILABLE',
}

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(
    readonly code: PolicyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

import { assertUnreachable } from '@tracegate/runtime';

export { assertUnreachable };
