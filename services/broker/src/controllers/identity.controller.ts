import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import { brokerV1 } from '@tracegate/contracts';
import { ApiKeyIssuer } from '../services/api-key-issuer.js';
import { BrokerErrorFilter } from './broker-error.filter.js';
import { InternalTokenGuard } from './internal-token.guard.js';

@Controller()
@UseGuards(InternalTokenGuard)
@UseFilters(BrokerErrorFilter)
@brokerV1.IdentityServiceControllerMethods()
export class IdentityController implements brokerV1.IdentityServiceController {
  constructor(private readonly issuer: ApiKeyIssuer) {}

  createKey(request: brokerV1.CreateKeyRequest): Promise<brokerV1.CreateKeyResponse> {
    return this.issuer.create(request);
  }

  async listKeys(): Promise<brokerV1.ListKeysResponse> {
    return { keys: await this.issuer.list() };
  }

  async revokeKey(request: brokerV1.RevokeKeyRequest): Promise<brokerV1.RevokeKeyResponse> {
    await this.issuer.revoke(request.name);
    return {};
  }

  async authenticate(request: brokerV1.AuthenticateRequest): Promise<brokerV1.AuthenticateResponse> {
    return { key: await this.issuer.authenticate(request.name, request.secret) };
  }
}
