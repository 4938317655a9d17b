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

  async addSshKey(request: brokerV1.AddSshKeyRequest): Promise<brokerV1.AddSshKeyResponse> {
    return { sshKey: await this.issuer.addSshKey(request) };
  }

  async removeSshKey(request: brokerV1.RemoveSshKeyRequest): Promise<brokerV1.RemoveSshKeyResponse> {
    await this.issuer.removeSshKey(request);
    return {};
  }

  async authenticatePublicKey(request: brokerV1.AuthenticatePublicKeyRequest): Promise<brokerV1.AuthenticatePublicKeyResponse> {
    return { key: await this.issuer.authenticatePublicKey(request.name, request.publicKey) };
  }
}
