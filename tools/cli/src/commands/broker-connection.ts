import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, type PromiseClient } from '@tracegate/runtime';

/** The metadata key the broker reads the internal token from. */
import { INTERNAL_TOKEN_METADATA } from '@tracegate/runtime';

/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure to report as one sentence, exit code 1. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

export interface BrokerConnection {
  readonly address: string;
  client<T>(service: 'TargetService' | 'IdentityService'): PromiseClient<T>;
}

/**
 * Where the broker is and the token it wants: TRACEGATE_BROKER_ADDRESS (default
 * 127.0.0.1:<TRACEGATE_BROKER_GRPC_PORT or 7104>), and TRACEGATE_INTERNAL_TOKEN or, unset, the file
 * the all-in-one writes: <TRACEGATE_HOME or ./.tracegate>/internal-token.
 */
export function brokerConnection(environment: Record<string, string | undefined> = process.env): BrokerConnection {
  const address = environment.TRACEGATE_BROKER_ADDRESS?.trim() || `127.0.0.1:${environment.TRACEGATE_BROKER_GRPC_PORT?.trim() || '7104'}`;
  const token = internalToken(environment);
  return {
    address,
    client<T>(service: 'TargetService' | 'IdentityService') {
      return grpcClient<T>(SERVICE_PROTOS.broker.files[0], `tracegate.broker.v1.${service}`, address, {
        metadata: { [INTERNAL_TOKEN_METADATA]: token },
        deadlineMs: 15_000,
      });
    },
  };
}

/** TRACEGATE_INTERNAL_TOKEN, or the file the all-in-one writes; every service-facing command presents it. */
export function internalToken(environment: Record<string, string | undefined>): string {
  const fromEnv = environment.TRACEGATE_INTERNAL_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const file = path.join(path.resolve(environment.TRACEGATE_HOME ?? '.tracegate'), 'internal-token');
  if (!existsSync(file)) {
    throw new CommandError(
      `no internal token: TRACEGATE_INTERNAL_TOKEN is not set and ${file} does not exist; start tracegate here first (\`npm start\`), set TRACEGATE_HOME to its data folder, or set TRACEGATE_INTERNAL_TOKEN`,
    );
  }
  return readFileSync(file, 'utf8').trim();
}

/** Calls the broker and turns a gRPC failure into a sentence for the terminal. */
export async function callBroker<T>(connection: BrokerConnection, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const grpc = error as Partial<ServiceError>;
    if (typeof grpc.code !== 'number') throw error;
    if (grpc.code === GrpcStatus.UNAVAILABLE || grpc.code === GrpcStatus.DEADLINE_EXCEEDED) {
      throw new CommandError(
        `cannot reach the broker at ${connection.address} (${grpc.details || 'unavailable'}); is tracegate running? Set TRACEGATE_BROKER_ADDRESS if it runs elsewhere`,
      );
    }
    throw new CommandError(grpc.details || `the broker answered ${GrpcStatus[grpc.code] ?? grpc.code}`);
  }
}

/** Left-aligned columns with two spaces between them. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function isoOf(timestamp: { seconds: number; nanos: number } | undefined): string {
  if (!timestamp) return '';
  return new Date(timestamp.seconds * 1000 + Math.floor(timestamp.nanos / 1_000_000)).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Runs a subcommand: usage mistakes exit 2 with the usage, failures exit 1 with one sentence. */
export async function runCommand(usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`tracegate: ${(error as Error).message}\n\n${usage}`);
      return 2;
    }
    if (error instanceof CommandError) {
      process.stderr.write(`tracegate: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
