import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { maskingV1 } from '@tracegate/contracts';
import { ProfileRegistry } from '../services/profile-registry.js';
import { InternalTokenGuard } from './internal-token.guard.js';
import { MaskingErrorFilter } from './masking-error.filter.js';

/** tracegate.masking.v1.MaskingService over gRPC. */
@Controller()
@UseFilters(MaskingErrorFilter)
@UseGuards(InternalTokenGuard)
@maskingV1.MaskingServiceControllerMethods()
export class MaskingController implements maskingV1.MaskingServiceController {
  constructor(private readonly registry: ProfileRegistry) {}

  redact(request: maskingV1.RedactRequest): maskingV1.RedactResponse {
    return this.registry.redact(request);
  }

  getProfile(request: maskingV1.GetProfileRequest): maskingV1.GetProfileResponse {
    return this.registry.getProfile(request);
  }

  watchProfiles(_request: maskingV1.WatchProfilesRequest): Observable<maskingV1.WatchProfilesResponse> {
    return this.registry.watch();
  }
}
