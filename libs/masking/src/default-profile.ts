import type { MaskingProfileSpec } from './profile.js';

/**
 * The built-in profile `default`: every detector over free text, and the columns whose names say
 * what they hold. It applies wherever a policy names no profile of its own.
 */
export const DEFAULT_PROFILE: MaskingProfileSpec = {
  name: 'default',
  version: 'builtin-1',
  rules: [
    {
      name: 'credentials',
      columnPattern: '(password|passwd|secret|api_?key|private_?key|access_?key|credential|auth_?token|access_?token|refresh_?token|^token$|_token$|^pwd$)',
      strategy: 'redact',
    },
    { name: 'government-ids', columnPattern: '^(ssn|social_security(_number)?|tax_id|national_id|passport(_number|_no)?)$', strategy: 'redact' },
    { name: 'payment-cards', columnPattern: '(card_?number|credit_?card|^cc_?num(ber)?$|^pan$|^cvv$|^cvc$)', strategy: 'partial', keepLast: 4 },
    { name: 'bank-accounts', columnPattern: '(^iban$|account_?number)', strategy: 'partial', keepLast: 4 },
    { name: 'emails', columnPattern: '(^|_)e_?mail(_address)?$', strategy: 'hash' },
    { name: 'phones', columnPattern: '(^|_)(phone|mobile|msisdn)(_number)?$', strategy: 'partial', keepLast: 2 },
    { name: 'free-text', detector: '*', strategy: 'redact' },
  ],
};
