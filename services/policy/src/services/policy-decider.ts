import { Inject, Injectable, type BeforeApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { BehaviorSubject, Subject, filter, map, pairwise, takeUntil, type Observable, type Subscription } from 'rxjs';
import { healthV1, timestampOf, type policyV1 } from '@tracegate/contracts';
import { HealthState, SERVICE_CONTEXT, type ServiceContext } from '@tracegate/runtime';
import type { ActivePolicy } from '../domain/policy-document.js';
import { PolicyEngine } from '../domain/policy-engine.js';
import { PolicyError } from '../domain/policy-error.js';
import { loadShellParser } from '../domain/shell-analysis.js';
import { loadSqlParser } from '../domain/sql-analysis.js';
import { POLICY_CONFIG, type PolicyConfig } from '../policy.config.js';
import { Clock } from '../repositories/clock.js';
import { PolicyActivationRepository } from '../repositories/policy-activation.repository.js';
import { PolicyFileWatcher, readPolicyFile } from '../repositories/policy-file.repository.js';
import { analyseCommand, commandOf, decideResponseOf, decisionInputOf, ruleEvaluationMessage } from './proto-mapping.js';

export const POLICY_GRPC_SERVICE = 'tracegate.policy.v1.PolicyService';

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
    await this.activate(this.config.startup.policy);
    const file = this.config.startup.file;
    if (file) this.watcher.watch(file, () => (this.reloading = this.reloading.then(() => this.reload(file))));
    // The host turns the service NOT_SERVING before the gRPC server drains its calls. Version
    // streams never end on their own, so they end here: otherwise every watching gateway would
    // hold the shutdown for the whole grace period.
    const { SERVING, NOT_SERVING } = healthV1.HealthCheckResponse_ServingStatus;
    this.healthSubscription = this.health
      .watch(POLICY_GRPC_SERVICE)
      ?.pipe(pairwise())
      .subscribe(([before, now]) => {
        if (before === SERVING && now === NOT_SERVING) this.draining$.next();
      });
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.healthSubscription?.unsubscribe();
    this.draining$.next();
    this.watcher.close();
    await this.reloading;
  }

  private async activate(policy: ActivePolicy): Promise<void> {
    const activatedAt = this.clock.now();
    const outcome = await this.activations.record(policy, activatedAt);
    this.inForce$.next({ policy, engine: new PolicyEngine(policy.document), activatedAt });
    this.context.logger.info(
      { version: policy.version, source: policy.source, rules: policy.document.rules.length, recorded: outcome.recorded },
      `policy ${policy.version} from ${policy.source} is in force`,
    );
  }

  private async reload(file: string): Promise<void> {
    let policy: ActivePolicy;
    try {
      policy = readPolicyFile(file);
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

  explain(request: policyV1.ExplainRequest): policyV1.ExplainResponse {
    const command = commandOf(request.input);
    const { policy, engine } = this.current();
    const statement = analyseCommand(command);
    const { decision, evaluations } = engine.explain(decisionInputOf(request.input!, statement, this.clock.now()));
    return { decision: decideResponseOf(decision, statement, policy.version), evaluations: evaluations.map(ruleEvaluationMessage) };
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
