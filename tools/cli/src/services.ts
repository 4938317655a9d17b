import { approvalsService } from '@tracegate/approvals';
import { auditService } from '@tracegate/audit';
import { brokerService } from '@tracegate/broker';
import { gatewayService } from '@tracegate/gateway';
import { maskingService } from '@tracegate/masking';
import { policyService } from '@tracegate/policy';
import type { ServiceDefinition } from '@tracegate/runtime';

/** Start order: what others call first; the gateway, which calls them all, last (and stops first). */
export const ALL_SERVICES: readonly ServiceDefinition[] = [
  brokerService,
  policyService,
  maskingService,
  approvalsService,
  auditService,
  gatewayService,
];
