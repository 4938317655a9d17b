import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { maskingV1, PROTO_ROOT, SERVICE_PROTOS } from '@tracegate/contracts';
import { compileProfile, profileFromProto } from '@tracegate/masking-engine';
import { PostgresEventLog, TOPICS, verifyChain, type CloudEvent } from '@tracegate/events';
import { ConfigError, grpcClient, INTERNAL_TOKEN_METADATA, startServices, type PromiseClient, type RunningProcess } from '@tracegate/runtime';
import { freePort, pollUntil, startPostgres } from '@tracegate/test-harness';
import { maskingService } from './masking.definition.js';
import { MASKING_GRPC_SERVICE } from './services/profile-registry.js';

const INTERNAL_TOKEN = 'masking-test-internal-token-0123456789abcdef';
const HASH_KEY = randomBytes(32).toString('base64');

const BILLING_V1 = `name: billing
version: "1"
rules:
  - { name: cards, column: card_number, strategy: partial, keep_last: 4 }
  - { name: contact-emails, json_path: $..email, strategy: hash }
  - { name: free-text, detector: "*", strategy: redact }
`;
const BILLING_V2 = BILLING_V1.replace('version: "1"', 'version: "2"').replace('strategy: hash', 'strategy: "null"');
const OTHER = `name: other
rules:
  - { name: cards-only, detector: payment-card, strategy: redact }
`;

type MaskingClient = PromiseClient<maskingV1.MaskingServiceClient>;

describe('masking service over gRPC', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>;
  let databaseUrl: string;
  let directory: string;

  async function start(env: Record<string, string> = {}): Promise<{ proc: RunningProcess; client: MaskingClient; address: string }> {
    const grpcPort = String(await freePort());
    const proc = await startServices([maskingService], {
      component: 'tracegate masking',
      databaseUrl,
      env: {
        TRACEGATE_MASKING_GRPC_PORT: grpcPort,
        TRACEGATE_MASKING_METRICS_PORT: String(await freePort()),
        TRACEGATE_LOG_LEVEL: 'silent',
        TRACEGATE_INTERNAL_TOKEN: INTERNAL_TOKEN,
        TRACEGATE_MASKING_HASH_KEY: HASH_KEY,
        TRACEGATE_MASKING_PROFILES_DIR: directory,
        ...env,
      },
    });
    const address = `127.0.0.1:${grpcPort}`;
    return { proc, client: client(address), address };
  }

  function client(address: string, token: string | null = INTERNAL_TOKEN): MaskingClient {
    return grpcClient<maskingV1.MaskingServiceClient>(join(PROTO_ROOT, SERVICE_PROTOS.masking.files[0]!), MASKING_GRPC_SERVICE, address, {
      metadata: token === null ? {} : { [INTERNAL_TOKEN_METADATA]: token },
    });
  }

  /** The maskingprofile events on the policy topic, read back from the log. */
  async function profileEvents(expected: number): Promise<CloudEvent<maskingV1.MaskingProfileActivated>[]> {
    const reader = await PostgresEventLog.connect(databaseUrl);
    const seen: CloudEvent[] = [];
    try {
      const subscription = await reader.subscribe({
        group: `masking-test-${Math.random()}`,
        topics: [TOPICS.policy.name],
        handler: async (delivery) => {
          seen.push(delivery.event);
        },
      });
      await pollUntil(() => seen.length >= expected, { description: `${expected} masking profile events` });
      await subscription.stop();
    } finally {
      await reader.close();
    }
    return seen.filter((e) => e.type === 'dev.tracegate.maskingprofile.activated.v1') as CloudEvent<maskingV1.MaskingProfileActivated>[];
  }

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    directory = await mkdtemp(join(tmpdir(), 'tracegate-masking-'));
    await writeFile(join(directory, 'billing.yaml'), BILLING_V1);
    await writeFile(join(directory, 'broken.yaml'), 'name: broken\nrules:\n  - { name: x, column: [a\n');
  });

  after(async () => {
    await postgres.stop();
    await rm(directory, { recursive: true, force: true });
  });

  describe('with a profiles directory', () => {
    let running: Awaited<ReturnType<typeof start>>;
    let watch: ClientReadableStream<maskingV1.WatchProfilesResponse>;
    const pushes: maskingV1.WatchProfilesResponse[] = [];

    before(async () => {
      running = await start();
      watch = running.client.stream<maskingV1.WatchProfilesResponse>('watchProfiles', {});
      watch.on('data', (message: maskingV1.WatchProfilesResponse) => pushes.push(message));
      watch.on('error', () => undefined);
    });
    after(async () => {
      watch.cancel();
      running.client.close();
      await running.proc.stop();
    });

    const versions = (push: maskingV1.WatchProfilesResponse | undefined): Record<string, string> => Object.fromEntries((push?.profiles ?? []).map((p) => [p.name, p.version]));

    it('loads the valid files beside the built-in default, and skips the broken one', async () => {
      const first = await pollUntil(() => pushes[0], { description: 'the first WatchProfiles message' });
      assert.deepEqual(versions(first), { default: 'builtin-1', billing: '1' });
    });

    it('redacts text with a named profile, counting hits by rule and detector, never values', async () => {
      const text = JSON.stringify({ customer: { email: 'jane@example.com' }, note: 'card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE' });
      const response = await running.client.redact({ profile: 'billing', text });
      const masked = JSON.parse(response.text) as { customer: { email: string }; note: string };
      assert.match(masked.customer.email, /^h_[0-9a-f]{24}$/);
      assert.equal(masked.note, 'card [REDACTED:payment-card], key [REDACTED:aws-access-key]');
      assert.deepEqual(
        response.hits.map((h) => `${h.detector}=${h.count}`).sort(),
        ['detector:aws-access-key=1', 'detector:payment-card=1', 'json:contact-emails=1'],
      );
      // The same key as the gateway's: the same value always hashes to the same token.
      const again = await running.client.redact({ profile: 'billing', text });
      assert.equal(again.text, response.text);
    });

    it('a pushed profile, compiled as the gateway compiles it with the same key, masks exactly as Redact does', async () => {
      const pushed = pushes[0]!.profiles.find((p) => p.name === 'billing')!;
      const engine = compileProfile(profileFromProto(pushed), { hashKey: Buffer.from(HASH_KEY, 'base64') });
      const text = JSON.stringify({ contacts: [{ email: 'max@example.de' }], note: 'iban DE89370400440532013000' });
      const local = engine.redactText(text);
      const remote = await running.client.redact({ profile: 'billing', text });
      assert.equal(remote.text, local.text);
      assert.doesNotMatch(local.text, /max@example|DE8937/);
      const plan = engine.planResult([{ name: 'card_number', tableOid: 1, columnId: 1, typeOid: 25, format: 0 }], 'SELECT card_number FROM payments');
      assert.ok(!('refused' in plan));
      const row = Buffer.from([0x44, 0, 0, 0, 0, 0, 1, 0, 0, 0, 16, ...Buffer.from('4111111111111111')]);
      row.writeInt32BE(row.length - 1, 1);
      assert.equal(plan.maskDataRow(row).subarray(11).toString(), '************1111');
    });

    it('redacts with the default profile when none is named', async () => {
      const response = await running.client.redact({ profile: '', text: 'connect postgres://app:hunter2pass@db/billing' });
      assert.equal(response.text, 'connect postgres://app:[REDACTED:credential-in-url]@db/billing');
    });

    it('answers an unknown profile with NOT_FOUND naming the profiles in force', async () => {
      await assert.rejects(running.client.redact({ profile: 'nope', text: 'x' }), (error: ServiceError) => {
        assert.equal(error.code, GrpcStatus.NOT_FOUND);
        assert.match(error.details, /^masking profile 'nope' is not in force \(profiles in force: billing, default\)/);
        return true;
      });
      await assert.rejects(running.client.getProfile({ name: '' }), (error: ServiceError) => error.code === GrpcStatus.INVALID_ARGUMENT && /name is required/.test(error.details));
    });

    it('refuses a call without the internal token', async () => {
      const anonymous = client(running.address, null);
      try {
        await assert.rejects(anonymous.redact({ profile: 'billing', text: '4111 1111 1111 1111' }), (error: ServiceError) => {
          assert.equal(error.code, GrpcStatus.UNAUTHENTICATED);
          assert.doesNotMatch(error.details, /4111/);
          return true;
        });
      } finally {
        anonymous.close();
      }
    });

    it('gets a profile as the proto carries it', async () => {
      const { profile } = await running.client.getProfile({ name: 'billing' });
      assert.equal(profile?.version, '1');
      assert.deepEqual(profile?.rules[0], { name: 'cards', column: 'card_number', columnPattern: '', jsonPath: '', detector: '', strategy: maskingV1.Strategy.STRATEGY_PARTIAL, keepLast: 4 });
    });

    it('pushes the whole set again when a profile changes; an invalid change is refused and the version in force stays', async () => {
      const before = pushes.length;
      await writeFile(join(directory, 'billing.yaml'), BILLING_V2);
      const second = await pollUntil(() => pushes.slice(before).find((p) => versions(p)['billing'] === '2'), { description: 'billing version 2 pushed' });
      assert.deepEqual(versions(second), { default: 'builtin-1', billing: '2' });
      const redacted = await running.client.redact({ profile: 'billing', text: JSON.stringify({ email: 'jane@example.com' }) });
      assert.equal(redacted.text, '{"email":null}');

      // Broken YAML, then a content change under the same version: both refused, nothing pushed.
      const settled = pushes.length;
      await writeFile(join(directory, 'billing.yaml'), 'name: billing\nversion: "3"\nrules:\n  - { name: x, strategy: [\n');
      await new Promise((resolve) => setTimeout(resolve, 400));
      await writeFile(join(directory, 'billing.yaml'), BILLING_V2.replace('keep_last: 4', 'keep_last: 2'));
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(pushes.length, settled, 'a refused change pushed a new set');
      const third = pushes.length;
      await writeFile(join(directory, 'other.yaml'), OTHER);
      const withOther = await pollUntil(() => pushes.slice(third).find((p) => 'other' in versions(p)), { description: 'profile other pushed' });
      assert.equal(versions(withOther)['billing'], '2');
      const { profile } = await running.client.getProfile({ name: 'billing' });
      assert.equal(profile?.rules[0]?.keepLast, 4);
    });

    it('records each activation on the policy topic, one hash chain per profile', async () => {
      const events = await profileEvents(4);
      const bySubject = Map.groupBy(events, (e) => e.subject);
      assert.deepEqual([...bySubject.keys()].sort(), ['maskingprofiles/billing', 'maskingprofiles/default', 'maskingprofiles/other']);
      const billing = bySubject.get('maskingprofiles/billing')!;
      assert.deepEqual(verifyChain(billing), []);
      assert.deepEqual(
        billing.map((e) => [e.data.version, e.data.previousVersion, e.data.source]),
        [
          ['1', '', join(directory, 'billing.yaml')],
          ['2', '1', join(directory, 'billing.yaml')],
        ],
      );
      assert.deepEqual(billing[1]!.data.rules, ['cards', 'contact-emails', 'free-text']);
    });
  });

  it('after a restart the versions in force stay, and nothing new is recorded', async () => {
    const running = await start();
    try {
      // The file still holds the refused content under version 2: version 2 as it was stays in force.
      const { profile } = await running.client.getProfile({ name: 'billing' });
      assert.deepEqual([profile?.version, profile?.rules[0]?.keepLast], ['2', 4]);
      const events = await profileEvents(4);
      assert.equal(events.length, 4);
    } finally {
      running.client.close();
      await running.proc.stop();
    }
  });

  it('refuses to start with a hash key that is too short, without echoing it', async () => {
    const short = randomBytes(16).toString('base64');
    await assert.rejects(start({ TRACEGATE_MASKING_HASH_KEY: short }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /TRACEGATE_MASKING_HASH_KEY: \(the value given\) is not base64 of at least 32 bytes; generate one with `openssl rand -base64 32`/);
      assert.ok(!error.message.includes(short));
      return true;
    });
  });
});
