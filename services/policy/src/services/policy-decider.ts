import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { BehaviorSubject, Subject, filter, map, takeUntil, type Observable, type Subscription } from 'rxjs';
import { timestampOf, type policyV1 } from '@tracegate/contracts';
import { ConfigError, HealthState, SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import type { PolicyChanges } from '../domain/policy-changes.js';
import { parsePolicyDocument, type ActivePolicy } from '../domain/policy-document.js';
import { PolicyEngine } from '../domain/policy-engine.js';
import { PolicyError, PolicyErrorCode } from '../domain/policy-error.js';
import { loadShellParser } from '../domain/shell-analysis.js';
import { loadSqlParser } from '../domain/sql-analysis.js';
import { POLICY_CONFIG, builtinPolicy, type PolicyConfig, type StartupPolicy } from '../policy.config.js';
import { Clock } from '../repositories/clock.js';
import { PolicyActivationRepository, type Publication, type RecordedVersion } from '../repositories/policy-activation.repository.js';
import { PolicyFileWatcher, readPolicyLocation, type PolicyLocation } from '../repositories/policy-file.repository.js';
import { analyseCommand, commandOf, decideResponseOf, decisionInputOf, ruleEvaluationMessage } from './proto-mapping.js';

export const POLICY_GRPC_SERVICE = 'tracegate.policy.v1.PolicyService';
/** DecideBatch's limit: large enough to amortise a call, small enough to keep one call short. */
const MAX_BATCH = 1000;

interface InForce {
  readonly policy: ActivePolicy;
  readonly engine: PolicyEngine;
  readonly activatedAt: Date;
}

/**
 * Holds the policy in force and decides statements with it. A new version is put in force only
 * once its activation is recorded on the event log; a file that changes to an invalid document
 * is refused as a whole and the version in force stays.
 */
@Injectable()
export class PolicyDecider implements OnModuleInit, BeforeApplicationShutdown {
  private readonly inForce$: BehaviorSubject<InForce | undefined>;
  private readonly watcher = new PolicyFileWatcher();
  private reloading: Promise<void> = Promise.resolve();
  private readonly draining$ = new Subject<void>();
  private healthSubscription: Subscription | undefined;

  constructor(
    @Inject(POLICY_CONFIG) private readonly config: PolicyConfig,
    @Inject(SERVICE_CONTEXT) private readonly context: ServiceContext,
    private readonly activations: PolicyActivationRepository,
    private readonly clock: Clock,
    private readonly health: HealthState,
  ) {
    this.inForce$ = new BehaviorSubject<InForce | undefined>(undefined);
  }

  async onModuleInit(): Promise<void> {
    await loadSqlParser();
    loadShellParser();
    const startup = await this.startupPolicy();
    await this.activate(startup.policy);
    const location = startup.location;
    if (location) this.watcher.watch(location, () => (this.reloading = this.reloading.then(() => this.reload(location))));
    // Feeds end when shutdown begins, or every watching gateway would hold it for the grace period.
    this.healthSubscription = this.health.shuttingDown(POLICY_GRPC_SERVICE)?.subscribe(() => this.draining$.next());
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.healthSubscription?.unsubscribe();
    this.draining$.next();
    this.watcher.close();
    await this.reloading;
  }

  /**
   * A directory or file named in the configuration; else the last version published through the
   * API, so a restart keeps it in force; else the built-in policy.
   */
  private async startupPolicy(): Promise<StartupPolicy> {
    const { fromDirectory, fromFile } = this.config;
    if (fromDirectory && fromFile) {
      throw new ConfigError('tracegate policy', [
        { env: 'TRACEGATE_POLICY_DIR', problem: 'is set together with TRACEGATE_POLICY_FILE; the policy comes from one place, so set only one of them' },
      ]);
    }
    const configured = fromDirectory ?? fromFile;
    if (configured) return configured;
    const published = await this.activations.lastPublished();
    if (published) {
      try {
        return { policy: parsePolicyDocument(published.document, published.source), location: undefined };
      } catch (error) {
        if (!(error instanceof PolicyError)) throw error;
        this.context.logger.error(`the last published policy ${published.version} no longer validates, so the built-in policy applies:\n${error.message}`);
      }
    }
    return builtinPolicy();
  }

  private async activate(policy: ActivePolicy, publication?: Publication): Promise<PolicyChanges | undefined> {
    const activatedAt = this.clock.now();
    const outcome = await this.activations.record(policy, activatedAt, publication);
    this.inForce$.next({ policy, engine: new PolicyEngine(policy.document), activatedAt });
    this.context.logger.info(
      { version: policy.version, source: policy.source, rules: policy.document.rules.length, recorded: outcome.recorded },
      `policy ${policy.version} from ${policy.source} is in force`,
    );
    return outcome.recorded ? outcome.changes : undefined;
  }

  private async reload(location: PolicyLocation): Promise<void> {
    let policy: ActivePolicy;
    try {
      policy = readPolicyLocation(location);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      this.context.logger.error(`${error.message}\nthe policy in force (${this.current().policy.version}) stays`);
      return;
    }
    if (policy.version === this.current().policy.version) return;
    try {
      await this.activate(policy);
    } catch (error) {
      this.context.logger.error({ err: error }, `policy ${policy.version} was not put in force; ${this.current().policy.version} stays`);
    }
  }

  private current(): InForce {
    const inForce = this.inForce$.value;
    // onModuleInit activates before the gRPC server takes calls.
    if (!inForce) throw new Error('no policy is in force yet');
    return inForce;
  }

  decide(request: policyV1.DecideRequest): policyV1.DecideResponse {
    const command = commandOf(request);
    const { policy, engine } = this.current();
    const statement = analyseCommand(command);
    const decision = engine.decide(decisionInputOf(request, statement, this.clock.now()));
    return decideResponseOf(decision, statement, policy.version);
  }

  /** Decides each request with the same policy version; one invalid request refuses the batch, naming it. */
  decideBatch(request: policyV1.DecideBatchRequest): policyV1.DecideBatchResponse {
    if (request.requests.length > MAX_BATCH) {
      throw new PolicyError(PolicyErrorCode.InvalidRequest, `a batch holds at most ${MAX_BATCH} requests, not ${request.requests.length}; split it`);
    }
    const { policy, engine } = this.current();
    const now = this.clock.now();
    return {
      responses: request.requests.map((item, index) => {
        try {
          const statement = analyseCommand(commandOf(item));
          return decideResponseOf(engine.decide(decisionInputOf(item, statement, now)), statement, policy.version);
        } catch (error) {
          if (error instanceof PolicyError) throw new PolicyError(error.code, `requests[${index}]: ${error.message}`, { cause: error });
          throw error;
        }
      }),
    };
  }

  explain(request: policyV1.ExplainRequest): policyV1.ExplainResponse {
    const command = commandOf(request.input);
    const { policy, engine } = this.current();
    const statement = analyseCommand(command);
    const { decision, evaluations } = engine.explain(decisionInputOf(request.input!, statement, this.clock.now()));
    return { decision: decideResponseOf(decision, statement, policy.version), evaluations: evaluations.map(ruleEvaluationMessage) };
  }

  /**
   * Puts a published document in force: validated whole first (an invalid one changes nothing),
   * then recorded with its author; publications and file reloads take turns.
   */
  async publish(request: policyV1.PublishPolicyRequest): Promise<policyV1.PublishPolicyResponse> {
    const author = request.author.trim();
    if (author === '') throw new PolicyError(PolicyErrorCode.InvalidRequest, 'author is required: say who publishes this policy (it is recorded with the version)');
    if (request.document.trim() === '') throw new PolicyError(PolicyErrorCode.InvalidRequest, 'document is empty: send the whole YAML policy document');
    const parsed = parsePolicyDocument(request.document, 'published document');
    const policy: ActivePolicy = { ...parsed, source: `published by ${author}` };
    const turn = this.reloading.then(async () => {
      if (policy.version === this.current().policy.version) return { version: policy.version, changed: false, changes: undefined };
      const changes = await this.activate(policy, { author, comment: request.comment });
      return { version: policy.version, changed: changes !== undefined, changes };
    });
    this.reloading = turn.then(
      () => undefined,
      () => undefined,
    );
    const { version, changed, changes } = await turn;
    return { version, changed, changes: changes ? changesMessage(changes) : undefined };
  }

  async listVersions(request: policyV1.ListPolicyVersionsRequest): Promise<policyV1.ListPolicyVersionsResponse> {
    const limit = request.limit === 0 ? 20 : Math.min(request.limit, 1000);
    const inForce = this.current().policy.version;
    const versions = await this.activations.list(limit);
    return { versions: versions.map((v, i) => versionMessage(v, request.includeDocuments, i === 0 && v.version === inForce)) };
  }

  /** The version in force now, then each new one. */
  versions(): Observable<policyV1.WatchPolicyVersionsResponse> {
    return this.inForce$.pipe(
      takeUntil(this.draining$),
      filter((inForce): inForce is InForce => inForce !== undefined),
      map(({ policy, activatedAt }) => ({
        version: policy.version,
        activatedAt: timestampOf(activatedAt),
      })),
    );
  }
}

function changesMessage(changes: PolicyChanges): policyV1.PolicyChanges {
  return {
    addedRules: [...changes.addedRules],
    removedRules: [...changes.removedRules],
    changedRules: [...changes.changedRules],
    defaultsChanged: changes.defaultsChanged,
  };
}

function versionMessage(version: RecordedVersion, includeDocument: boolean, inForce: boolean): policyV1.PolicyVersion {
  return {
    version: version.version,
    previousVersion: version.previousVersion,
    source: version.source,
    author: version.author,
    comment: version.comment,
    activatedAt: timestampOf(version.activatedAt),
    rules: [...version.rules],
    changes: changesMessage(version.changes),
    sequence: version.sequence,
    document: includeDocument ? version.document : '',
    inForce,
  };
}
