import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '@tracegate/runtime';
import { APPROVALS_CONFIG_SCHEMA, slackSettingsOf } from './approvals.config.js';

const TOKEN = 'x'.repeat(40);
const BOT_TOKEN = 'xoxb-1234-5678-abcdefabcdef';
const SIGNING_SECRET = '0123456789abcdef0123456789abcdef';

const load = (env: Record<string, string>) => loadConfig('tracegate approvals', APPROVALS_CONFIG_SCHEMA, { TRACEGATE_INTERNAL_TOKEN: TOKEN, ...env });

function problemsOf(fn: () => unknown): Map<string, string> {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return new Map(error.problems.map((p) => [p.env, p.problem]));
  }
  assert.fail('expected a ConfigError');
}

describe('approvals configuration', () => {
  it('leaves the Slack bot off when no bot token is set', () => {
    assert.equal(slackSettingsOf(load({})), undefined);
  });

  it('names every variable a half-configured Slack bot lacks, at once', () => {
    const http = problemsOf(() => slackSettingsOf(load({ TRACEGATE_SLACK_BOT_TOKEN: BOT_TOKEN })));
    assert.deepEqual([...http.keys()], ['TRACEGATE_SLACK_SIGNING_SECRET', 'TRACEGATE_SLACK_CHANNELS']);
    const socket = problemsOf(() => slackSettingsOf(load({ TRACEGATE_SLACK_BOT_TOKEN: BOT_TOKEN, TRACEGATE_SLACK_MODE: 'socket', TRACEGATE_SLACK_CHANNELS: 'dba=C0DBA' })));
    assert.deepEqual([...socket.keys()], ['TRACEGATE_SLACK_APP_TOKEN']);
    assert.match(socket.get('TRACEGATE_SLACK_APP_TOKEN')!, /an app-level token \(xapp-…\) with connections:write/);
  });

  it('reads channels per reviewer group and the Slack user mapping, naming a bad entry', () => {
    const settings = slackSettingsOf(
      load({ TRACEGATE_SLACK_BOT_TOKEN: BOT_TOKEN, TRACEGATE_SLACK_SIGNING_SECRET: SIGNING_SECRET, TRACEGATE_SLACK_CHANNELS: 'dba=C0DBA, *=C0ALL', TRACEGATE_SLACK_USERS: 'U024BE7LH=alice' }),
    )!;
    assert.deepEqual(Object.fromEntries(settings.channels), { dba: 'C0DBA', '*': 'C0ALL' });
    assert.deepEqual(Object.fromEntries(settings.users), { U024BE7LH: 'alice' });
    assert.equal(settings.apiUrl, 'https://slack.com/api/');
    const bad = problemsOf(() => load({ TRACEGATE_SLACK_CHANNELS: 'dba=C0DBA,#reviews', TRACEGATE_SLACK_USERS: 'alice' }));
    assert.match(bad.get('TRACEGATE_SLACK_CHANNELS')!, /^entry 2 \('#reviews'\) is not <reviewer group or \*>=<Slack channel id>/);
    assert.match(bad.get('TRACEGATE_SLACK_USERS')!, /^entry 1 \('alice'\) is not <Slack user id>=<tracegate identity name>/);
  });

  it('never echoes a Slack secret in a configuration error', () => {
    const leaked = 'not-a-bot-token-but-secret-material';
    const problems = problemsOf(() => load({ TRACEGATE_SLACK_BOT_TOKEN: leaked, TRACEGATE_SLACK_SIGNING_SECRET: `${leaked}!`, TRACEGATE_SLACK_APP_TOKEN: leaked }));
    assert.deepEqual([...problems.keys()], ['TRACEGATE_SLACK_BOT_TOKEN', 'TRACEGATE_SLACK_SIGNING_SECRET', 'TRACEGATE_SLACK_APP_TOKEN']);
    for (const problem of problems.values()) assert.ok(!problem.includes(leaked), problem);
  });
});
