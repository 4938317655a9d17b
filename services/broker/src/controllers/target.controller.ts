import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import { brokerV1 } from '@tracegate/contracts';
import { TargetRegistry } from '../services/target-registry.js';
import { BrokerErrorFilter } from './broker-error.filter.js';
import { InternalTokenGuard } from './internal-token.guard.js';

/** Every call is an operator's or a service's: listings describe infrastructure, so they need the token too. */
@Controller()
@UseGuards(InternalTokenGuard)
@UseFilters(BrokerErrorFilter)
@brokerV1.TargetServiceControllerMethods()
export class TargetController implements brokerV1.TargetServiceController {
  constructor(private readonly registry: TargetRegistry) {}

  async addTarget(request: brokerV1.AddTargetRequest): Promise<brokerV1.AddTargetResponse> {
    return { target: await this.registry.add(request) };
  }

  async listTargets(): Promise<brokerV1.ListTargetsResponse> {
    return { targets: await this.registry.list() };
  }

  async removeTarget(request: brokerV1.RemoveTargetRequest): Promise<brokerV1.RemoveTargetResponse> {
    await this.registry.remove(request.name);
    return {};
  }

  async rewrapSecrets(): Promise<brokerV1.RewrapSecretsResponse> {
    return this.registry.rewrapSecrets();
  }
}
