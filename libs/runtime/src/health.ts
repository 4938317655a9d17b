import { Controller, Inject, Injectable } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { BehaviorSubject, Observable, distinctUntilChanged, filter, map, pairwise } from 'rxjs';
import { healthV1 } from '@tracegate/contracts';

const { HealthCheckResponse_ServingStatus: ServingStatus } = healthV1;
type ServingStatus = healthV1.HealthCheckResponse_ServingStatus;

export const SERVICE_NAMES_TOKEN = Symbol('HEALTH_SERVICE_NAMES');

/**
 * Serving status per gRPC service name, as grpc.health.v1 defines it: "" is the server as a
 * whole, and each fully-qualified service (`tracegate.policy.v1.PolicyService`) has its own.
 * A service shutting down turns NOT_SERVING first so load balancers stop sending it work.
 */
@Injectable()
export class HealthState {
  private readonly statuses = new Map<string, BehaviorSubject<ServingStatus>>();

  constructor(@Inject(SERVICE_NAMES_TOKEN) serviceNames: readonly string[]) {
    for (const name of ['', ...serviceNames]) this.statuses.set(name, new BehaviorSubject<ServingStatus>(ServingStatus.NOT_SERVING));
  }

  setAll(status: ServingStatus): void {
    for (const subject of this.statuses.values()) subject.next(status);
  }

  /**
   * Ends every Watch stream (after telling it NOT_SERVING). gRPC's graceful shutdown waits for
   * open calls, and a Watch never ends by itself: without this, shutdown would always take the
   * whole grace period.
   */
  endWatches(): void {
    for (const subject of this.statuses.values()) subject.complete();
  }

  current(service: string): ServingStatus | undefined {
    return this.statuses.get(service)?.value;
  }

  watch(service: string): Observable<ServingStatus> | undefined {
    return this.statuses.get(service)?.asObservable().pipe(distinctUntilChanged());
  }

  /**
   * Emits when the service turns from SERVING to NOT_SERVING: shutdown has begun. The host does
   * this before the gRPC server drains its calls, so it is when a service ends its own server
   * streams (version and profile feeds), which never end by themselves and would otherwise hold
   * the shutdown for the whole grace period.
   */
  shuttingDown(service: string): Observable<void> | undefined {
    return this.watch(service)?.pipe(
      pairwise(),
      filter(([before, now]) => before === ServingStatus.SERVING && now === ServingStatus.NOT_SERVING),
      map(() => undefined),
    );
  }
}

@Controller()
@healthV1.HealthControllerMethods()
export class HealthController implements healthV1.HealthController {
  constructor(private readonly state: HealthState) {}

  check(request: healthV1.HealthCheckRequest): healthV1.HealthCheckResponse {
    const status = this.state.current(request.service);
    if (status === undefined) {
      // The protocol says: NOT_FOUND for a service the server does not know.
      throw new RpcException({ code: GrpcStatus.NOT_FOUND, message: `no service named '${request.service}' is served here` });
    }
    return { status };
  }

  watch(request: healthV1.HealthCheckRequest): Observable<healthV1.HealthCheckResponse> {
    const statuses = this.state.watch(request.service);
    if (!statuses) return new BehaviorSubject({ status: ServingStatus.SERVICE_UNKNOWN }).asObservable();
    return statuses.pipe(map((status) => ({ status })));
  }
}
