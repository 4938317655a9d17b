import { assertUnreachable } from '@tracegate/runtime';

/** The masking module's one error class; the controller maps each code to a gRPC status. */
export enum MaskingErrorCode {
  /** A request lacks something it needs (the text to redact, a profile name). */
  InvalidRequest = 'MASKING_INVALID_REQUEST',
  /** No profile of that name is in force. */
  ProfileNotFound = 'MASKING_PROFILE_NOT_FOUND',
  /** A profile document that does not parse or validate; the message names file, line and column. */
  InvalidProfile = 'MASKING_INVALID_PROFILE',
  /** The profiles directory could not be read. */
  ProfilesUnreadable = 'MASKING_PROFILES_UNREADABLE',
  /** The call did not carry the internal token. */
  Unauthenticated = 'MASKING_UNAUTHENTICATED',
  /** The event log did not record a profile activation, so the profile was not put in force. */
  EventLogUnavailable = 'MASKING_EVENT_LOG_UNAVAILABLE',
}

export class MaskingError extends Error {
  override readonly name = 'MaskingError';
  constructor(
    readonly code: MaskingErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export { assertUnreachable };
