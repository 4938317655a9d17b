/**
 * The policy in force when TRACEGATE_POLICY_FILE is not set: a sensible quick start, and the
 * shape to copy for your own (docs/policy.md documents every field).
 *
 * - humans: allowed, including statements the analyser cannot see into (DO blocks, EXECUTE);
 * - agents: may read (SELECT, SHOW, EXPLAIN, SET, transaction control, cursors); may not run
 *   opaque statements, server-side file/network/backend functions, COPY to/from the server or a
 *   program, role changes, DDL, DCL or TRUNCATE, or UPDATE/DELETE without a WHERE clause; other
 *   writes wait for one approval from the `dba` group;
 * - services: denied unless a rule allows them.
 * - shell commands (SSH): agents are denied destructive forms (rm -rf /, mkfs, dd to a disk,
 *   shutdown, fork bombs, chmod -R of /, curl | sh, sudo) and opaque ones, and wait for an `ops`
 *   approval for anything else; humans wait for an `ops` approval for the destructive forms.
 */
export const BUILTIN_POLICY_SOURCE = 'built-in';

export const BUILTIN_POLICY_YAML = `# tracegate built-in policy (used when TRACEGATE_POLICY_FILE is not set)
version: 1
default:
  agent: deny
  human: allow
  service: deny
rules:
  - name: agents-no-destructive-shell
    priority: 1100
    match:
      identity: { kind: [agent] }
      statement: { kind: [shell], flags: [destructive_delete, filesystem_format, raw_device_write, power_state, fork_bomb, recursive_permission_change, remote_code_execution, privilege_escalation] }
    effect: deny
    reason: agents may not delete or reformat system paths and disks, change the machine's power state or system permissions, run downloaded scripts, or escalate privileges

  - name: humans-destructive-shell-needs-review
    priority: 1050
    match:
      identity: { kind: [human] }
      statement: { kind: [shell], flags: [destructive_delete, filesystem_format, raw_device_write, power_state, fork_bomb, recursive_permission_change, remote_code_execution] }
    effect: review
    reason: this command can destroy the machine or its data; a second operator must approve it
    review: { group: ops, quorum: 1, timeout_seconds: 900 }

  - name: agents-no-opaque-statements
    priority: 1000
    match:
      identity: { kind: [agent] }
      statement: { opaque: true }
    effect: deny
    reason: tracegate cannot tell what this statement does (a DO block, EXECUTE, dynamic SQL or text the parser cannot read), so agents may not run it

  - name: agents-no-server-access
    priority: 900
    match:
      identity: { kind: [agent] }
      statement: { flags: [dangerous_function, copy_program, copy_server_file, load_library, role_change] }
    effect: deny
    reason: agents may not read or write the database server's files, run programs on it, reach other servers or backends, load libraries, or change role

  - name: agents-no-schema-or-privilege-changes
    priority: 800
    match:
      identity: { kind: [agent] }
      statement: { kind: [ddl, dcl, truncate] }
    effect: deny
    reason: agents may not change the schema or privileges, or truncate tables; ask a DBA

  - name: agents-no-unfiltered-writes
    priority: 700
    match:
      identity: { kind: [agent] }
      statement: { has_where: false }
    effect: deny
    reason: agents may not UPDATE or DELETE without a WHERE clause that filters on a column

  - name: agents-read
    priority: 500
    match:
      identity: { kind: [agent] }
      statement: { kind: [select, show, explain, set, transaction, session] }
    effect: allow

  - name: agents-writes-need-review
    priority: 400
    match:
      identity: { kind: [agent] }
      statement: { kind: [insert, update, delete, merge, copy, call] }
    effect: review
    reason: agent writes need the approval of a DBA
    review: { group: dba, quorum: 1, timeout_seconds: 900 }

  - name: agents-shell-needs-review
    priority: 400
    match:
      identity: { kind: [agent] }
      statement: { kind: [shell] }
    effect: review
    reason: agent shell commands need the approval of an operator
    review: { group: ops, quorum: 1, timeout_seconds: 900 }

  - name: humans-may-run-opaque-statements
    priority: 100
    match:
      identity: { kind: [human] }
      statement: { opaque: true }
    effect: allow
`;
