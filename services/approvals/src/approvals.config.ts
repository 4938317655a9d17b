import { ConfigError, ConfigProblem, env, type ConfigField, type ConfigOf } from '@tracegate/runtime';


/** `key=value,key=value`, e.g. `dba=C0123,*=C0999`. Problems name the entry, never a value that could be secret. */
export function pairList(name: string, opts: { describe: string; key: RegExp; value: RegExp }): ConfigField<ReadonlyMap<string, string>> {
  return {
    env: name,
    parse(raw) {
      const pairs = new Map<string, string>();
      if (raw === undefined) return pairs;
      const problems: string[] = [];
      raw.split(',').map((e) => e.trim()).filter(Boolean).forEach((entry, index) => {
        const eq = entry.indexOf('=');
        const key = entry.slice(0, eq).trim();
        const value = entry.slice(eq + 1).trim();
        if (eq <= 0 || !opts.key.test(key) || !opts.value.test(value)) problems.push(`entry ${index + 1} ('${entry.slice(0, 80)}') is not ${opts.describe}`);
        else pairs.set(key, value);
      });
      if (problems.length > 0) throw new ConfigProblem(problems.join('; '));
      return pairs;
    },
  };
}

const SLACK_ID = /^[A-Z0-9]{2,20}$/;
const IDENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$/;
const GROUP = /^(\*|[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62})$/;

export const APPROVALS_CONFIG_SCHEMA = {
  internalToken: env.string('TRACEGATE_INTERNAL_TOKEN', { pattern: /^.{32,}$/, describe: 'a shared secret of at least 32 characters (`openssl rand -base64 32`)', secret: true }),
  /** The broker resolves reviewers' API keys to identities; default: this machine's broker port. */
  brokerAddress: env.address('TRACEGATE_BROKER_ADDRESS'),
  defaultTimeoutSeconds: env.int('TRACEGATE_APPROVALS_DEFAULT_TIMEOUT_SECONDS', { fallback: 900, min: 1, max: 604_800 }),
  maxTimeoutSeconds: env.int('TRACEGATE_APPROVALS_MAX_TIMEOUT_SECONDS', { fallback: 86_400, min: 1, max: 604_800 }),
  /** The Slack bot runs only when a bot token is set. */
  slackBotToken: env.optional(env.string('TRACEGATE_SLACK_BOT_TOKEN', { pattern: /^xoxb-[A-Za-z0-9-]+$/, describe: 'a Slack bot token (xoxb-…)', secret: true })),
  slackSigningSecret: env.optional(env.string('TRACEGATE_SLACK_SIGNING_SECRET', { pattern: /^[A-Za-z0-9]{16,}$/, describe: "the Slack app's signing secret (Basic Information → App Credentials)", secret: true })),
  slackAppToken: env.optional(env.string('TRACEGATE_SLACK_APP_TOKEN', { pattern: /^xapp-[A-Za-z0-9-]+$/, describe: 'a Slack app-level token (xapp-…) with connections:write, for Socket Mode', secret: true })),
  slackMode: env.oneOf('TRACEGATE_SLACK_MODE', ['http', 'socket'] as const, 'http'),
  slackPort: env.port('TRACEGATE_SLACK_PORT', 7115),
  slackApiUrl: env.string('TRACEGATE_SLACK_API_URL', { fallback: 'https://slack.com/api/', pattern: /^https?:\/\/[^\s]+\/$/, describe: 'the Slack Web API base URL, ending in / (https://slack.com/api/)' }),
  /** Which channel asks each reviewer group; `*` is the channel for groups not listed. */
  slackChannels: pairList('TRACEGATE_SLACK_CHANNELS', { describe: '<reviewer group or *>=<Slack channel id>, e.g. dba=C0123ABCD', key: GROUP, value: SLACK_ID }),
  /** Slack users mapped to tracegate identities by name; users not listed are matched by email. */
  slackUsers: pairList('TRACEGATE_SLACK_USERS', { describe: '<Slack user id>=<tracegate identity name>, e.g. U024BE7LH=alice', key: SLACK_ID, value: IDENTITY_NAME }),
} satisfies Record<string, ConfigField<unknown>>;

export type ApprovalsConfig = ConfigOf<typeof APPROVALS_CONFIG_SCHEMA>;

export const APPROVALS_CONFIG = Symbol('APPROVALS_CONFIG');

/** The Slack bot's settings once they are known to be complete. */
export interface SlackSettings {
  readonly botToken: string;
  readonly mode: 'http' | 'socket';
  readonly signingSecret: string | undefined;
  readonly appToken: string | undefined;
  readonly port: number;
  readonly apiUrl: string;
  readonly channels: ReadonlyMap<string, string>;
  readonly users: ReadonlyMap<string, string>;
}

/**
 * The Slack settings that only make sense together: undefined when no bot token is set (the bot
 * is off), otherwise complete, or a ConfigError naming every missing variable.
 */
export function slackSettingsOf(config: ApprovalsConfig, component = 'tracegate approvals'): SlackSettings | undefined {
  if (!config.slackBotToken) return undefined;
  const problems: { env: string; problem: string }[] = [];
  if (config.slackMode === 'http' && !config.slackSigningSecret) {
    problems.push({ env: 'TRACEGATE_SLACK_SIGNING_SECRET', problem: "is required with TRACEGATE_SLACK_BOT_TOKEN in http mode: it verifies that interactions come from Slack (the app's Basic Information page has it)" });
  }
  if (config.slackMode === 'socket' && !config.slackAppToken) {
    problems.push({ env: 'TRACEGATE_SLACK_APP_TOKEN', problem: 'is required with TRACEGATE_SLACK_MODE=socket: an app-level token (xapp-…) with connections:write' });
  }
  if (config.slackChannels.size === 0) {
    problems.push({ env: 'TRACEGATE_SLACK_CHANNELS', problem: 'is required with TRACEGATE_SLACK_BOT_TOKEN: which channel asks each reviewer group, e.g. dba=C0123ABCD,*=C0456EFGH' });
  }
  if (problems.length > 0) throw new ConfigError(component, problems);
  return {
    botToken: config.slackBotToken,
    mode: config.slackMode,
    signingSecret: config.slackSigningSecret,
    appToken: config.slackAppToken,
    port: config.slackPort,
    apiUrl: config.slackApiUrl,
    channels: config.slackChannels,
    users: config.slackUsers,
  };
}
