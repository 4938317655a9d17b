import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import { auditV1 } from '@tracegate/contracts';
import { AuditErrorFilter } from '../../controllers/audit-error.filter.js';
import { InternalTokenGuard } from '../../controllers/internal-token.guard.js';
import { ReaderGrants, toProtoGrant } from '../services/reader-grants.js';

/** ReaderGrantService: administrators (internal token) manage who may read the audit trail. */
@Controller()
@UseGuards(InternalTokenGuard)
@UseFilters(AuditErrorFilter)
@auditV1.ReaderGrantServiceControllerMethods()
export class ReaderGrantController implements auditV1.ReaderGrantServiceController {
  constructor(private readonly grants: ReaderGrants) {}

  async createReaderGrant(request: auditV1.CreateReaderGrantRequest): Promise<auditV1.CreateReaderGrantResponse> {
    return { grant: toProtoGrant(await this.grants.create(request)) };
  }

  async listReaderGrants(request: auditV1.ListReaderGrantsRequest): Promise<auditV1.ListReaderGrantsResponse> {
    return { grants: (await this.grants.list(request)).map(toProtoGrant) };
  }

  async revokeReaderGrant(request: auditV1.RevokeReaderGrantRequest): Promise<auditV1.RevokeReaderGrantResponse> {
    return { grant: toProtoGrant(await this.grants.revoke(request.id)) };
  }
}
