import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import { brokerV1 } from '@tracegate/contracts';
import { CredentialBroker } from '../services/credential-broker.js';
import { BrokerErrorFilter } from './broker-error.filter.js';
import { InternalTokenGuard } from './internal-token.guard.js';

@Controller()
@UseGuards(InternalTokenGuard)
@UseFilters(BrokerErrorFilter)
@brokerV1.CredentialServiceControllerMethods()
export class CredentialController implements brokerV1.CredentialServiceController {
  constructor(private readonly broker: CredentialBroker) {}

  checkoutCredential(request: brokerV1.CheckoutCredentialRequest): Promise<brokerV1.CheckoutCredentialResponse> {
    return this.broker.checkout(request);
  }

  async releaseCredential(request: brokerV1.ReleaseCredentialRequest): Promise<brokerV1.ReleaseCredentialResponse> {
    await this.broker.release(request.leaseId);
    return {};
  }
}
