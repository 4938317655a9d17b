import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, env, loadConfig } from './config.js';
import { loadProcessConfig, type ServiceDefinition } from './service-host.js';

const schema = {
  grpcPort: env.port('X_GRPC_PORT', 7000),
  level: env.oneOf('X_LEVEL', ['info', 'debug'] as const, 'info'),
  databaseUrl: env.url('X_DATABASE_URL', { protocols: ['postgresql:'], optional: true }),
  brokers: env.hostPorts('X_BROKERS'),
  grace: env.int('X_GRACE_MS', { fallback: 10, min: 0, max: 100 }),
};

describe('loadConfig', () => {
  it('applies defaults when nothing is set', () => {
    const config = loadConfig('x', schema, {});
    assert.deepEqual(config, { grpcPort: 7000, level: 'info', databaseUrl: undefined, brokers: undefined, grace: 10 });
  });

  it('parses given values', () => {
    const config = loadConfig('x', schema, {
      X_GRPC_PORT: '7100',
      X_LEVEL: 'debug',
      X_DATABASE_URL: 'postgresql://u:p@h:5432/d',
      X_BROKERS: 'a:9092, b:9093',
      X_GRACE_MS: '0',
    });
    assert.deepEqual(config, { grpcPort: 7100, level: 'debug', databaseUrl: 'postgresql://u:p@h:5432/d', brokers: ['a:9092', 'b:9093'], grace: 0 });
  });

  it('names every bad variable in one message', () => {
    assert.throws(
      () => loadConfig('tracegate policy', schema, { X_GRPC_PORT: '70000', X_LEVEL: 'loud', X_BROKERS: 'nohost', X_GRACE_MS: '1.5' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems.map((p) => p.env), ['X_GRPC_PORT', 'X_LEVEL', 'X_BROKERS', 'X_GRACE_MS']);
        assert.match(error.message, /^tracegate policy cannot start: 4 configuration values are invalid:/);
        assert.match(error.message, /X_GRPC_PORT: '70000' is not a port number; use a whole number from 1 to 65535/);
        assert.match(error.message, /X_LEVEL: 'loud' is not one of info, debug/);
        return true;
      },
    );
  });

  it('never echoes a database URL, which carries a password', () => {
    assert.throws(
      () => loadConfig('x', schema, { X_DATABASE_URL: 'mysql://admin:hunter2@db/x' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.doesNotMatch(error.message, /hunter2/);
        assert.match(error.message, /X_DATABASE_URL: has scheme mysql: but must be one of postgresql:/);
        return true;
      },
    );
    assert.throws(
      () => loadConfig('x', schema, { X_DATABASE_URL: 'not a url with secret hunter2' }),
      (error: unknown) => error instanceof ConfigError && !error.message.includes('hunter2'),
    );
  });
});

it('never echoes a value marked secret', () => {
  assert.throws(
    () => loadConfig('x', { token: env.string('X_TOKEN', { pattern: /^.{32,}$/, describe: 'at least 32 characters', secret: true }) }, { X_TOKEN: 'short-secret' }),
    (error: unknown) => error instanceof ConfigError && !error.message.includes('short-secret') && /X_TOKEN: \(the value given\) is not at least 32 characters/.test(error.message),
  );
});

describe('optional settings and service addresses', () => {
  const schema = { policy: env.address('TRACEGATE_POLICY_ADDRESS'), key: env.optional(env.string('SOME_KEY', { pattern: /^k-\w+$/, secret: true })) };

  it('leaves an unset (or empty) one undefined and checks a given one as its field does', () => {
    assert.deepEqual(loadConfig('test', schema, {}), { policy: undefined, key: undefined });
    assert.deepEqual(loadConfig('test', schema, { TRACEGATE_POLICY_ADDRESS: ' ', SOME_KEY: '' }), { policy: undefined, key: undefined });
    assert.deepEqual(loadConfig('test', schema, { TRACEGATE_POLICY_ADDRESS: 'policy.internal:7102', SOME_KEY: 'k-1' }), { policy: 'policy.internal:7102', key: 'k-1' });
  });

  it('refuses an address that is not host:port, and a bad secret without echoing it', () => {
    assert.throws(
      () => loadConfig('test', schema, { TRACEGATE_POLICY_ADDRESS: 'http://policy', SOME_KEY: 'leaked-value' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /TRACEGATE_POLICY_ADDRESS: 'http:\/\/policy' is not host:port/.test(error.message) &&
        /SOME_KEY:/.test(error.message) &&
        !error.message.includes('leaked-value'),
    );
  });
});

describe('loadProcessConfig', () => {
  const def = (name: 'policy' | 'audit', grpc: number, metrics: number): ServiceDefinition => ({
    name,
    defaultPorts: { grpc, metrics },
    grpcServices: [],
    configSchema: {},
    module: () => {
      throw new Error('not started in this test');
    },
  });

  it('collects problems across the host and every service', () => {
    assert.throws(
      () =>
        loadProcessConfig('tracegate', [def('policy', 7102, 9102), def('audit', 7106, 9106)], {
          TRACEGATE_LOG_LEVEL: 'chatty',
          TRACEGATE_POLICY_GRPC_PORT: 'abc',
          TRACEGATE_AUDIT_METRICS_PORT: '0',
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems.map((p) => p.env), ['TRACEGATE_LOG_LEVEL', 'TRACEGATE_POLICY_GRPC_PORT', 'TRACEGATE_AUDIT_METRICS_PORT']);
        return true;
      },
    );
  });

  it('refuses two services on one port', () => {
    assert.throws(
      () => loadProcessConfig('tracegate', [def('policy', 7102, 9102), def('audit', 7106, 9106)], { TRACEGATE_AUDIT_GRPC_PORT: '7102' }),
      /TRACEGATE_AUDIT_GRPC_PORT: port 7102 is already taken by TRACEGATE_POLICY_GRPC_PORT/,
    );
  });
});
