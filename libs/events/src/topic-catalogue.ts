/**
 * Every topic tracegate writes. SIEM consumers read these directly; docs/events.md documents
 * them for people and must agree with this list (a unit test checks it does).
 *
 * Audit topics keep events forever and are never compacted: the log is the source of truth and
 * the audit database is only a projection of it.
 */
export interface TopicSpec {
  readonly name: string;
  /** What the record key is: every event of one aggregate shares a key, so one partition orders them. */
  readonly key: string;
  readonly aggregates: readonly string[];
  readonly partitions: number;
  /** -1 = keep forever. */
  readonly retentionMs: number;
  readonly description: string;
}

export const TOPICS = {
  sessions: {
    name: 'tracegate.sessions.v1',
    key: 'session id',
    aggregates: ['session'],
    partitions: 6,
    retentionMs: -1,
    description: 'Session lifecycle and every statement or command in it: requested, decided, completed.',
  },
  approvals: {
    name: 'tracegate.approvals.v1',
    key: 'approval request id',
    aggregates: ['approval'],
    partitions: 3,
    retentionMs: -1,
    description: 'Approval requests and reviewer verdicts.',
  },
  traces: {
    name: 'tracegate.traces.v1',
    key: 'trace id',
    aggregates: ['trace'],
    partitions: 3,
    retentionMs: -1,
    description: 'Reasoning traces, stored only after masking.',
  },
  access: {
    name: 'tracegate.access.v1',
    key: 'target or identity name',
    aggregates: ['target', 'identity', 'grant', 'lease'],
    partitions: 3,
    retentionMs: -1,
    description: 'Targets, API keys, just-in-time grants and credential leases (never a secret).',
  },
  policy: {
    name: 'tracegate.policy.v1',
    key: 'policy name',
    aggregates: ['policy', 'maskingprofile'],
    partitions: 1,
    retentionMs: -1,
    description: 'Policy and masking profile versions as they are activated.',
  },
  audit: {
    name: 'tracegate.audit.v1',
    key: 'reader name, or `session-checkpoints`',
    aggregates: ['auditaccess', 'checkpoint'],
    partitions: 1,
    retentionMs: -1,
    description: 'Reads of the audit trail and signed integrity checkpoints.',
  },
} as const satisfies Record<string, TopicSpec>;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS]['name'];

export const ALL_TOPICS: readonly TopicSpec[] = Object.values(TOPICS);

export function topicForAggregate(aggregate: string): TopicSpec {
  const topic = ALL_TOPICS.find((t) => t.aggregates.includes(aggregate));
  if (!topic) throw new TypeError(`no topic carries events of aggregate '${aggregate}'; add it to TOPICS`);
  return topic;
}
