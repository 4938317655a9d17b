/**
 * The Kubernetes base (deploy/k8s) against the services' own configuration schemas: every setting a
 * service cannot run without in the distributed mode is provided, secrets only come from Secrets,
 * references resolve, ports and addresses agree with the Services, and deploy/README.md documents
 * it all. The schemas are imported, not copied, so a setting added to a service without its
 * manifest fails here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { approvalsService } from '@tracegate/approvals';
import { auditService } from '@tracegate/audit';
import { brokerService } from '@tracegate/broker';
import { gatewayService } from '@tracegate/gateway';
import { maskingService } from '@tracegate/masking';
import { policyService } from '@tracegate/policy';
import { ConfigProblem, HOST_SCHEMA, env, loadProcessConfig, portSchema, type ConfigField, type ServiceDefinition } from '@tracegate/runtime';

const workspace = fileURLToPath(new URL('../../', import.meta.url));
const K8S_DIR = `${workspace}deploy/k8s/`;
const README = `${workspace}deploy/README.md`;

const SERVICES: readonly ServiceDefinition[] = [gatewayService, policyService, maskingService, brokerService, approvalsService, auditService];

// --- the slice of the Kubernetes API the manifests use ---------------------------------------------

interface KeyRef { name: string; key: string; optional?: boolean }
interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: KeyRef; configMapKeyRef?: KeyRef } }
interface Container {
  name: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { prefix?: string; configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string } }[];
  readinessProbe?: { grpc?: { port: number } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Volume { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; configMap?: { name: string } }
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    ports?: { name?: string; port: number; targetPort?: string | number }[];
    template?: { metadata?: { annotations?: Record<string, string> }; spec: { containers: Container[]; volumes?: Volume[] } };
  };
}

/** The resources kustomization.yaml lists, each file's documents parsed (YAML errors fail the load). */
function loadBase(): Manifest[] {
  const kustomization = YAML.parse(readFileSync(`${K8S_DIR}kustomization.yaml`, 'utf8')) as { resources: string[] };
  return kustomization.resources.flatMap((file) => {
    const documents = YAML.parseAllDocuments(readFileSync(`${K8S_DIR}${file}`, 'utf8'));
    for (const document of documents) assert.deepEqual(document.errors.map(String), [], `${file} is not valid YAML`);
    return documents.map((document) => document.toJSON() as Manifest).filter(Boolean);
  });
}

// --- what the schemas say ---------------------------------------------------------------------------

type Field = ConfigField<unknown>;

/** Every variable a service's process reads: the host's, its ports, its own. */
function fieldsOf(def: ServiceDefinition): Map<string, Field> {
  const fields = new Map<string, Field>();
  for (const field of [...Object.values(HOST_SCHEMA), ...Object.values(portSchema(def)), ...Object.values(def.configSchema)]) fields.set(field.env, field as Field);
  return fields;
}

/** Required by the schema itself: the service refuses to start without it. */
function requiredBySchema(field: Field): boolean {
  try {
    field.parse(undefined);
    return false;
  } catch (error) {
    if (error instanceof ConfigProblem) return true;
    throw error;
  }
}

const ADDRESS = new RegExp(`^TRACEGATE_(${SERVICES.map((s) => s.name.toUpperCase()).join('|')})_ADDRESS$`);

/**
 * Optional in the schemas because the all-in-one (one machine, one process) has a fallback that is
 * wrong across pods. Addresses of other services (TRACEGATE_<SERVICE>_ADDRESS) are in the same
 * position and are found by name, below.
 */
const REQUIRED_ACROSS_PODS: Readonly<Record<string, string>> = {
  DATABASE_URL: 'a service on its own refuses to start without its database',
  KAFKA_BROKERS: 'without it each service keeps its events in its own database, where audit never sees them',
  TRACEGATE_MASKING_HASH_KEY: 'without it each process makes up its own key, so hashed values differ between pods and after a restart',
  TRACEGATE_AUDIT_CHECKPOINT_KEY: 'without it no checkpoint is signed and a rewritten history cannot be told from the real one',
  TRACEGATE_GATEWAY_TLS_CERT_FILE: 'clients must use TLS (TRACEGATE_GATEWAY_ALLOW_PLAINTEXT is not true), so the listener needs a certificate',
  TRACEGATE_GATEWAY_TLS_KEY_FILE: 'clients must use TLS (TRACEGATE_GATEWAY_ALLOW_PLAINTEXT is not true), so the listener needs a key',
};

/** Why a variable must be set for this container, or undefined when it may be left out. */
function requirement(name: string, field: Field, sources: ReadonlyMap<string, Source>): string | undefined {
  if (requiredBySchema(field)) return 'the service refuses to start without it';
  if (ADDRESS.test(name)) return 'unset, it points at 127.0.0.1, which is this pod';
  // Plaintext is an explicit choice (never across an untrusted network); then no certificate is needed.
  if (/^TRACEGATE_GATEWAY_TLS_/.test(name) && valueOf(sources.get('TRACEGATE_GATEWAY_ALLOW_PLAINTEXT')) === 'true') return undefined;
  return REQUIRED_ACROSS_PODS[name];
}

// A value no field accepts, without the separators (',', ':') that fields split on, so a field that
// quotes what it was given quotes all of it.
const PROBE = 'deploy probe = not valid';

/**
 * A secret, by the project's rule that secrets never reach error messages: a field that refuses a
 * bad value without quoting it is guarding a secret. The name catches secrets whose field accepts
 * any string (and so never gets to refuse the probe).
 */
function isSecret(field: Field): boolean {
  if (/(TOKEN|SECRET|PASSWORD|_KEYS?)$/.test(field.env)) return true;
  try {
    field.parse(PROBE);
    return false;
  } catch (error) {
    return error instanceof ConfigProblem && !error.message.includes(PROBE);
  }
}

// --- what the manifests give a container -----------------------------------------------------------

type Source =
  | { readonly from: 'literal'; readonly value: string }
  | { readonly from: 'configMap'; readonly configMap: string; readonly key: string; readonly value: string | undefined }
  | { readonly from: 'secret'; readonly secret: string; readonly key: string; readonly optional: boolean };

/** As loadConfig reads it: an empty value is unset. */
function valueOf(source: Source | undefined): string | undefined {
  if (!source || source.from === 'secret') return undefined;
  return source.value === undefined || source.value.trim() === '' ? undefined : source.value.trim();
}

interface Workload { readonly deployment: Manifest; readonly container: Container; readonly volumes: readonly Volume[] }

function workloadOf(def: ServiceDefinition, manifests: readonly Manifest[]): Workload | undefined {
  const deployment = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === `tracegate-${def.name}`);
  const container = deployment?.spec?.template?.spec.containers.find((c) => c.args?.includes(`services/${def.name}/dist/main.js`));
  if (!deployment || !container) return undefined;
  return { deployment, container, volumes: deployment.spec?.template?.spec.volumes ?? [] };
}

/** Each variable's source as Kubernetes resolves it (env overrides envFrom), and references that do not resolve. */
function environmentOf(container: Container, manifests: readonly Manifest[]): { sources: Map<string, Source>; problems: string[] } {
  const sources = new Map<string, Source>();
  const problems: string[] = [];
  const configMap = (name: string) => manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === name);
  for (const from of container.envFrom ?? []) {
    if (from.secretRef) problems.push(`envFrom secretRef ${from.secretRef.name} hides which variables are secret; reference each with secretKeyRef`);
    if (!from.configMapRef) continue;
    const map = configMap(from.configMapRef.name);
    if (!map) {
      if (!from.configMapRef.optional) problems.push(`envFrom names ConfigMap ${from.configMapRef.name}, which is not in the base`);
      continue;
    }
    for (const [key, value] of Object.entries(map.data ?? {})) sources.set(`${from.prefix ?? ''}${key}`, { from: 'configMap', configMap: map.metadata.name, key, value });
  }
  for (const variable of container.env ?? []) {
    const secretRef = variable.valueFrom?.secretKeyRef;
    const mapRef = variable.valueFrom?.configMapKeyRef;
    if (secretRef) {
      sources.set(variable.name, { from: 'secret', secret: secretRef.name, key: secretRef.key, optional: secretRef.optional === true });
    } else if (mapRef) {
      const value = configMap(mapRef.name)?.data?.[mapRef.key];
      if (value === undefined && !mapRef.optional) problems.push(`${variable.name} takes key ${mapRef.key} of ConfigMap ${mapRef.name}, which does not exist in the base`);
      sources.set(variable.name, { from: 'configMap', configMap: mapRef.name, key: mapRef.key, value });
    } else if (variable.value !== undefined) {
      sources.set(variable.name, { from: 'literal', value: String(variable.value) });
    } else {
      problems.push(`${variable.name} has neither a value nor a reference`);
    }
  }
  return { sources, problems };
}

// --- the checks: each returns sentences naming what is wrong, empty when all is well -----------------

/** Every variable the service needs is provided, from a Secret when it is a secret, with a value its field accepts. */
function configurationProblems(def: ServiceDefinition, manifests: readonly Manifest[]): string[] {
  const workload = workloadOf(def, manifests);
  if (!workload) return [`no Deployment tracegate-${def.name} with a container running services/${def.name}/dist/main.js`];
  const { sources, problems } = environmentOf(workload.container, manifests);
  const fields = fieldsOf(def);
  for (const [name, field] of fields) {
    const source = sources.get(name);
    const reason = requirement(name, field, sources);
    const provided = source !== undefined && (source.from === 'secret' ? !source.optional : valueOf(source) !== undefined);
    if (reason && !provided) problems.push(`${name} is not set (${reason})`);
    if (!source) continue;
    if (isSecret(field) && source.from !== 'secret') problems.push(`${name} is a secret but comes from ${source.from === 'literal' ? 'a literal value' : `ConfigMap ${source.configMap}`}; reference a Secret with secretKeyRef`);
    const value = valueOf(source);
    if (value !== undefined && !isSecret(field)) {
      try {
        field.parse(value);
      } catch (error) {
        if (!(error instanceof ConfigProblem)) throw error;
        problems.push(`${name} = '${value}' is refused by the service: ${error.message}`);
      }
    }
  }
  const bindHost = valueOf(sources.get('TRACEGATE_BIND_HOST')) ?? '127.0.0.1';
  if (/^(127\.|localhost$|::1$)/.test(bindHost)) problems.push(`TRACEGATE_BIND_HOST is ${bindHost}: probes and other pods could not reach the service`);
  // A name the service does not read is a typo or a setting that was renamed.
  for (const variable of workload.container.env ?? []) {
    if (!fields.has(variable.name)) problems.push(`${variable.name} is set but ${def.name} does not read it`);
  }
  return problems;
}

/** Ports in the manifest agree with the ports the service will listen on; addresses name the Services. */
function networkProblems(def: ServiceDefinition, manifests: readonly Manifest[]): string[] {
  const workload = workloadOf(def, manifests);
  if (!workload) return [`no Deployment for ${def.name}`];
  const problems: string[] = [];
  const { sources } = environmentOf(workload.container, manifests);
  const fields = fieldsOf(def);
  // A value the field refuses is reported by configurationProblems; here it reads as the default.
  const portOf = (name: string): number => {
    const field = fields.get(name)!;
    try {
      return field.parse(valueOf(sources.get(name))) as number;
    } catch {
      return field.parse(undefined) as number;
    }
  };
  const ports = portSchema(def);
  const grpc = portOf(ports.grpcPort.env);
  const metrics = portOf(ports.metricsPort.env);
  const containerPort = (name: string) => workload.container.ports?.find((p) => p.name === name)?.containerPort;
  if (containerPort('grpc') !== grpc) problems.push(`containerPort grpc is ${containerPort('grpc')} but ${ports.grpcPort.env} is ${grpc}`);
  if (containerPort('metrics') !== metrics) problems.push(`containerPort metrics is ${containerPort('metrics')} but ${ports.metricsPort.env} is ${metrics}`);
  if (workload.container.readinessProbe?.grpc?.port !== grpc) problems.push(`the gRPC readiness probe checks port ${workload.container.readinessProbe?.grpc?.port}, not ${grpc}`);
  const scrapePort = workload.deployment.spec?.template?.metadata?.annotations?.['prometheus.io/port'];
  if (scrapePort !== String(metrics)) problems.push(`prometheus.io/port is ${scrapePort}, not ${metrics}`);

  const service = manifests.find((m) => m.kind === 'Service' && m.metadata.name === `tracegate-${def.name}`);
  if (!service) return [...problems, `no Service tracegate-${def.name}`];
  const forwards = (port: number) =>
    service.spec?.ports?.some((p) => (typeof p.targetPort === 'string' ? containerPort(p.targetPort) : (p.targetPort ?? p.port)) === port) ?? false;
  // Every other listener (the gateway's Postgres port, the approvals Slack endpoint) is exposed too.
  for (const name of fields.keys()) {
    if (!name.endsWith('_PORT')) continue;
    const port = portOf(name);
    if (!workload.container.ports?.some((p) => p.containerPort === port)) problems.push(`${name} is ${port} but the container declares no such port`);
    else if (!forwards(port)) problems.push(`${name} is ${port} but Service tracegate-${def.name} does not forward to it`);
  }
  for (const name of fields.keys()) {
    const target = ADDRESS.exec(name)?.[1]?.toLowerCase();
    if (!target) continue;
    const targetService = manifests.find((m) => m.kind === 'Service' && m.metadata.name === `tracegate-${target}`);
    const expected = `tracegate-${target}:${targetService?.spec?.ports?.find((p) => p.name === 'grpc')?.port}`;
    const actual = valueOf(sources.get(name));
    if (actual !== undefined && actual !== expected) problems.push(`${name} is ${actual}, but Service tracegate-${target} serves gRPC at ${expected}`);
  }
  return problems;
}

/** A setting that names a file or directory points into a mounted volume (the image holds no configuration); keys come from Secrets. */
function fileProblems(def: ServiceDefinition, manifests: readonly Manifest[]): string[] {
  const workload = workloadOf(def, manifests);
  if (!workload) return [`no Deployment for ${def.name}`];
  const problems: string[] = [];
  const { sources } = environmentOf(workload.container, manifests);
  for (const name of fieldsOf(def).keys()) {
    const path = valueOf(sources.get(name));
    if (!/_(FILE|DIR)$/.test(name) || path === undefined) continue;
    const mount = workload.container.volumeMounts?.find((m) => path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`) || path === m.mountPath);
    const volume = workload.volumes.find((v) => v.name === mount?.name);
    if (!mount || !volume) {
      problems.push(`${name} = ${path} is not inside any mounted volume`);
      continue;
    }
    if (/_KEY_FILE$/.test(name) && !volume.secret) problems.push(`${name} = ${path} is a private key but volume ${volume.name} is not a Secret`);
    const file = posix.relative(mount.mountPath, path);
    if (volume.secret?.items && !volume.secret.items.some((item) => item.path === file)) problems.push(`${name} = ${path}: Secret volume ${volume.name} does not project ${file}`);
  }
  return problems;
}

/** Secrets are only referenced: none is in the base, and no ConfigMap or literal holds a secret's value. */
function secretProblems(manifests: readonly Manifest[]): string[] {
  const problems = manifests.filter((m) => m.kind === 'Secret').map((m) => `Secret ${m.metadata.name} is in git; create it in the cluster instead (README.md)`);
  const secretNames = new Set(SERVICES.flatMap((def) => [...fieldsOf(def).values()].filter(isSecret).map((f) => f.env)));
  for (const map of manifests.filter((m) => m.kind === 'ConfigMap')) {
    for (const key of Object.keys(map.data ?? {})) if (secretNames.has(key)) problems.push(`ConfigMap ${map.metadata.name} holds ${key}, a secret`);
  }
  return problems;
}

/** A setting several services share must reach them from one place, or they drift apart. */
function sharedSourceProblems(manifests: readonly Manifest[]): string[] {
  const seen = new Map<string, { service: string; source: string }>();
  const problems: string[] = [];
  for (const def of SERVICES) {
    const workload = workloadOf(def, manifests);
    if (!workload) continue;
    for (const [name, source] of environmentOf(workload.container, manifests).sources) {
      // One database per service, by design.
      if (name === 'DATABASE_URL' || !fieldsOf(def).has(name)) continue;
      const where = source.from === 'secret' ? `Secret ${source.secret} key ${source.key}` : source.from === 'configMap' ? `ConfigMap ${source.configMap} key ${source.key}` : `'${source.value}'`;
      const first = seen.get(name);
      if (!first) seen.set(name, { service: def.name, source: where });
      else if (first.source !== where) problems.push(`${name} comes from ${first.source} for ${first.service} but from ${where} for ${def.name}`);
    }
  }
  return problems;
}

/** A key in a shared ConfigMap that no service reads is a typo or a leftover of a renamed setting. */
function unreadConfigMapKeys(manifests: readonly Manifest[]): string[] {
  const read = new Set(SERVICES.flatMap((def) => [...fieldsOf(def).keys()]));
  return manifests
    .filter((m) => m.kind === 'ConfigMap')
    .flatMap((m) => Object.keys(m.data ?? {}).filter((key) => !read.has(key)).map((key) => `ConfigMap ${m.metadata.name} sets ${key}, which no service reads`));
}

/** deploy/README.md names every variable and shows how to create every Secret, with each key the manifests take from it. */
function readmeProblems(readme: string, manifests: readonly Manifest[]): string[] {
  const variables = new Set(SERVICES.flatMap((def) => [...fieldsOf(def).keys()]));
  const problems = [...variables].filter((name) => !readme.includes(`\`${name}\``)).map((name) => `${name} is not documented`);
  // A `kubectl create secret` command naming the Secret and, on it or its continued lines, the key.
  const creates = (secret: string, option: string) => new RegExp(`create secret (generic|tls) ${secret} [^\\n]*(\\\\\\n[^\\n]*)*${option}`).test(readme);
  for (const def of SERVICES) {
    const workload = workloadOf(def, manifests);
    if (!workload) continue;
    for (const source of environmentOf(workload.container, manifests).sources.values()) {
      if (source.from === 'secret' && !creates(source.secret, `--from-(literal|file)=${source.key}=`)) problems.push(`no command creates Secret ${source.secret} with key ${source.key}`);
    }
    for (const volume of workload.volumes) {
      // A Secret mounted as files: a TLS pair (--cert=) or key files (--from-file=).
      if (volume.secret && !creates(volume.secret.secretName, '(--cert=|--from-file=)')) problems.push(`no command creates Secret ${volume.secret.secretName}`);
    }
  }
  return [...new Set(problems)];
}

/** `openssl rand -base64 <bytes>`, as the README makes keys. */
const opensslRandBase64 = (bytes: number) => randomBytes(bytes).toString('base64');

/** The Secrets as the README's commands create them (tracegate-slack is optional and left out, as in a first install). */
function readmeSecret(secret: string, key: string): string | undefined {
  if (secret === 'tracegate-database') return `postgresql://tracegate_${key}:p%40ss@pg.example.internal:5432/tracegate_${key}`;
  const made: Record<string, string> = {
    'tracegate-kafka/brokers': 'kafka-0.kafka.kafka.svc:9092,kafka-1.kafka.kafka.svc:9092',
    'tracegate-internal-token/token': opensslRandBase64(32),
    'tracegate-masking-hash-key/key': opensslRandBase64(32),
    'tracegate-broker-keys/keys': `k1:${opensslRandBase64(32)}`,
    'tracegate-audit-checkpoint-key/key': opensslRandBase64(32),
  };
  return made[`${secret}/${key}`];
}

/** The environment a container gets once the README's Secrets exist. */
function startupEnvironment(container: Container, manifests: readonly Manifest[]): { environment: Record<string, string | undefined>; unknown: string[] } {
  const environment: Record<string, string | undefined> = {};
  const unknown: string[] = [];
  for (const [name, source] of environmentOf(container, manifests).sources) {
    if (source.from !== 'secret') {
      environment[name] = source.value;
      continue;
    }
    const value = readmeSecret(source.secret, source.key);
    if (value === undefined && !source.optional) unknown.push(`Secret ${source.secret} key ${source.key}: say here how the README makes it`);
    environment[name] = value;
  }
  return { environment, unknown };
}

// --- the tests --------------------------------------------------------------------------------------

describe('deploy/k8s against the services’ configuration', () => {
  const base = loadBase();

  it('lists a Deployment and a Service for every service, and no Secret', () => {
    for (const def of SERVICES) {
      assert.ok(workloadOf(def, base), `Deployment tracegate-${def.name} running services/${def.name}/dist/main.js`);
      assert.ok(base.some((m) => m.kind === 'Service' && m.metadata.name === `tracegate-${def.name}`), `Service tracegate-${def.name}`);
    }
    assert.deepEqual(secretProblems(base), []);
  });

  for (const def of SERVICES) {
    it(`${def.name}: every setting it needs is provided, secrets from Secrets, values it accepts`, () => {
      assert.deepEqual(configurationProblems(def, base), []);
    });
    it(`${def.name}: ports, probes, the Service and the addresses of the others agree with its settings`, () => {
      assert.deepEqual(networkProblems(def, base), []);
    });
    it(`${def.name}: its configuration loads from the manifests and the Secrets the README makes`, () => {
      const { environment, unknown } = startupEnvironment(workloadOf(def, base)!.container, base);
      assert.deepEqual(unknown, []);
      // The whole process configuration at once: every field, the host's and the cross-checks (port clashes).
      const { host, services } = loadProcessConfig(`tracegate ${def.name}`, [def], environment);
      assert.equal(host.kafkaBrokers?.length, 2);
      assert.ok(services.has(def.name));
    });
    it(`${def.name}: file settings point into mounted volumes`, () => {
      assert.deepEqual(fileProblems(def, base), []);
    });
  }

  it('gives settings shared by several services one source, and sets no ConfigMap key nobody reads', () => {
    assert.deepEqual(sharedSourceProblems(base), []);
    assert.deepEqual(unreadConfigMapKeys(base), []);
  });

  it('documents every setting and every Secret in deploy/README.md', () => {
    assert.deepEqual(readmeProblems(readFileSync(README, 'utf8'), base), []);
  });

  it('builds the image on the project’s Node major, with every workspace installed and proto/ shipped', () => {
    const dockerfile = readFileSync(`${workspace}deploy/Dockerfile`, 'utf8');
    const nodeMajor = readFileSync(`${workspace}.nvmrc`, 'utf8').trim().replace(/^v/, '').split('.')[0];
    assert.match(dockerfile, new RegExp(`^ARG NODE_IMAGE=node:${nodeMajor}[-.]`, 'm'), `NODE_IMAGE is not Node ${nodeMajor} (.nvmrc)`);
    // npm ci refuses a lockfile whose workspaces are missing, so each manifest is copied before it.
    const lock = JSON.parse(readFileSync(`${workspace}package-lock.json`, 'utf8')) as { packages: Record<string, unknown> };
    const workspaces = Object.keys(lock.packages).filter((path) => path !== '' && !path.includes('node_modules'));
    const beforeInstall = dockerfile.slice(0, dockerfile.indexOf('npm ci'));
    assert.deepEqual(workspaces.filter((path) => !beforeInstall.includes(`COPY ${path}/package.json ${path}/`)), [], 'workspaces whose package.json is not copied before npm ci');
    // The services load the .proto files at run time.
    assert.match(dockerfile, /cp -a [^\n]*\bproto\b[^\n]* \/out\//);
    for (const def of SERVICES) assert.match(dockerfile, new RegExp(`for svc in [^;]*\\b${def.name}\\b`), `the image does not check services/${def.name}/dist/main.js`);
  });

  it('classifies secrets the way the services treat them', () => {
    const all = new Map(SERVICES.flatMap((def) => [...fieldsOf(def)]));
    const secret = (name: string) => isSecret(all.get(name)!);
    for (const name of ['DATABASE_URL', 'TRACEGATE_INTERNAL_TOKEN', 'TRACEGATE_BROKER_KEYS', 'TRACEGATE_MASKING_HASH_KEY', 'TRACEGATE_AUDIT_CHECKPOINT_KEY', 'TRACEGATE_SLACK_SIGNING_SECRET']) {
      assert.equal(secret(name), true, name);
    }
    for (const name of ['KAFKA_BROKERS', 'TRACEGATE_LOG_LEVEL', 'TRACEGATE_BROKER_ADDRESS', 'TRACEGATE_SLACK_CHANNELS', 'TRACEGATE_GATEWAY_TLS_KEY_FILE', 'TRACEGATE_POLICY_DIR']) {
      assert.equal(secret(name), false, name);
    }
    // Caught by the probe alone: a URL carries a password and its field never quotes it.
    assert.equal(isSecret(env.url('SOME_URL', { protocols: ['postgres:'], optional: true }) as Field), true);
  });

  // The checks above pass on the base; these prove they would fail on the mistakes they exist for.
  describe('the checks catch', () => {
    const gateway = (manifests: Manifest[]) => workloadOf(gatewayService, manifests)!.container;

    it('a required setting added to a service but not to its manifest', () => {
      const grown: ServiceDefinition = { ...brokerService, configSchema: { ...brokerService.configSchema, rotation: env.string('TRACEGATE_BROKER_ROTATION_KEY', { secret: true }) } };
      assert.deepEqual(configurationProblems(grown, base), ['TRACEGATE_BROKER_ROTATION_KEY is not set (the service refuses to start without it)']);
    });

    it('a required secret dropped from a Deployment, or its reference made optional', () => {
      const dropped = structuredClone(base);
      gateway(dropped).env = gateway(dropped).env!.filter((v) => v.name !== 'TRACEGATE_INTERNAL_TOKEN');
      assert.deepEqual(configurationProblems(gatewayService, dropped), ['TRACEGATE_INTERNAL_TOKEN is not set (the service refuses to start without it)']);
      const optional = structuredClone(base);
      gateway(optional).env!.find((v) => v.name === 'TRACEGATE_MASKING_HASH_KEY')!.valueFrom!.secretKeyRef!.optional = true;
      assert.match(configurationProblems(gatewayService, optional).join('\n'), /^TRACEGATE_MASKING_HASH_KEY is not set \(without it each process makes up its own key/);
    });

    it('a secret inlined in a Deployment or the ConfigMap, or a Secret committed', () => {
      const inlined = structuredClone(base);
      const keys = workloadOf(brokerService, inlined)!.container.env!.find((v) => v.name === 'TRACEGATE_BROKER_KEYS')!;
      keys.valueFrom = undefined;
      keys.value = 'k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
      assert.deepEqual(configurationProblems(brokerService, inlined), ['TRACEGATE_BROKER_KEYS is a secret but comes from a literal value; reference a Secret with secretKeyRef']);
      const inConfigMap = structuredClone(base);
      inConfigMap.find((m) => m.kind === 'ConfigMap')!.data!['TRACEGATE_INTERNAL_TOKEN'] = 'x'.repeat(40);
      assert.deepEqual(secretProblems(inConfigMap), ['ConfigMap tracegate-config holds TRACEGATE_INTERNAL_TOKEN, a secret']);
      const committed = [...base, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tracegate-internal-token' }, stringData: { token: 'x'.repeat(40) } }];
      assert.deepEqual(secretProblems(committed), ['Secret tracegate-internal-token is in git; create it in the cluster instead (README.md)']);
    });

    it('an address left at loopback or pointing at the wrong port, and a moved port the manifest does not follow', () => {
      const configured = (change: (data: Record<string, string>) => void) => {
        const copy = structuredClone(base);
        change(copy.find((m) => m.kind === 'ConfigMap')!.data!);
        return copy;
      };
      const unset = configured((data) => delete data['TRACEGATE_POLICY_ADDRESS']);
      assert.deepEqual(configurationProblems(gatewayService, unset), ['TRACEGATE_POLICY_ADDRESS is not set (unset, it points at 127.0.0.1, which is this pod)']);
      const wrongPort = configured((data) => (data['TRACEGATE_BROKER_ADDRESS'] = 'tracegate-broker:7999'));
      assert.deepEqual(networkProblems(auditService, wrongPort), ['TRACEGATE_BROKER_ADDRESS is tracegate-broker:7999, but Service tracegate-broker serves gRPC at tracegate-broker:7104']);
      const slackMoved = configured((data) => (data['TRACEGATE_SLACK_PORT'] = '7116'));
      assert.deepEqual(networkProblems(approvalsService, slackMoved), ['TRACEGATE_SLACK_PORT is 7116 but the container declares no such port']);
      const grpcMoved = configured((data) => (data['TRACEGATE_POLICY_GRPC_PORT'] = '7202'));
      assert.deepEqual(networkProblems(policyService, grpcMoved), [
        'containerPort grpc is 7102 but TRACEGATE_POLICY_GRPC_PORT is 7202',
        'the gRPC readiness probe checks port 7102, not 7202',
        'TRACEGATE_POLICY_GRPC_PORT is 7202 but the container declares no such port',
      ]);
    });

    it('a setting or a Secret key the README leaves out', () => {
      const readme = readFileSync(README, 'utf8');
      const trimmed = readme
        .replaceAll('`TRACEGATE_DURABILITY`', 'durability')
        .replace(/ --from-literal=app-token='xapp-…'/, '');
      assert.deepEqual(readmeProblems(trimmed, base), ['TRACEGATE_DURABILITY is not documented', 'no command creates Secret tracegate-slack with key app-token']);
    });

    it('a ConfigMap reference to a missing key, a stale variable and a TLS file outside its Secret', () => {
      const broken = structuredClone(base);
      gateway(broken).env!.push(
        { name: 'TRACEGATE_GATEWAY_RECORDED_ROWS', valueFrom: { configMapKeyRef: { name: 'tracegate-config', key: 'RECORDED_ROWS' } } },
        { name: 'TRACEGATE_GATEWAY_TLS_CERT', value: '/etc/tracegate/tls/tls.crt' },
      );
      gateway(broken).env!.find((v) => v.name === 'TRACEGATE_GATEWAY_TLS_KEY_FILE')!.value = '/app/tls.key';
      assert.deepEqual(configurationProblems(gatewayService, broken), [
        'TRACEGATE_GATEWAY_RECORDED_ROWS takes key RECORDED_ROWS of ConfigMap tracegate-config, which does not exist in the base',
        'TRACEGATE_GATEWAY_TLS_CERT is set but gateway does not read it',
      ]);
      assert.deepEqual(fileProblems(gatewayService, broken), ['TRACEGATE_GATEWAY_TLS_KEY_FILE = /app/tls.key is not inside any mounted volume']);
    });

    it('a gateway without its certificate, unless plaintext was chosen', () => {
      const withoutTls = structuredClone(base);
      gateway(withoutTls).env = gateway(withoutTls).env!.filter((v) => !v.name.startsWith('TRACEGATE_GATEWAY_TLS_'));
      assert.deepEqual(configurationProblems(gatewayService, withoutTls), [
        'TRACEGATE_GATEWAY_TLS_CERT_FILE is not set (clients must use TLS (TRACEGATE_GATEWAY_ALLOW_PLAINTEXT is not true), so the listener needs a certificate)',
        'TRACEGATE_GATEWAY_TLS_KEY_FILE is not set (clients must use TLS (TRACEGATE_GATEWAY_ALLOW_PLAINTEXT is not true), so the listener needs a key)',
      ]);
      withoutTls.find((m) => m.kind === 'ConfigMap')!.data!['TRACEGATE_GATEWAY_ALLOW_PLAINTEXT'] = 'true';
      assert.deepEqual(configurationProblems(gatewayService, withoutTls), []);
    });
  });
});
