import { credentials, loadPackageDefinition, Metadata, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Observable } from 'rxjs';
import { PROTO_LOADER_OPTIONS, PROTO_ROOT } from '@tracegate/contracts';

/** The ts-proto client interface (Observables, for Nest) as plain promises. */
export type PromiseClient<T> = {
  [K in keyof T]: T[K] extends (request: infer Req, ...rest: never[]) => unknown
    ? (request: Req) => Promise<T[K] extends (...a: never[]) => Observable<infer Res> ? Res : never>
    : never;
} & {
  close(): void;
  /**
   * Opens a server stream (e.g. a Watch). No deadline: such streams live as long as the caller
   * wants; cancel() ends one.
   */
  stream<Res>(method: ServerStreamMethods<T>, request: unknown): ClientReadableStream<Res>;
};

type ServerStreamMethods<T> = { [K in keyof T]: K extends string ? K : never }[keyof T];

export interface GrpcClientOptions {
  /** Sent with every call, e.g. the internal service token. */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly deadlineMs?: number;
}

const definitions = new Map<string, ReturnType<typeof loadPackageDefinition>>();

/**
 * A unary-call client for one of our services, loaded from the same .proto files the server
 * serves, with the same loader options, so field names and enums agree with ts-proto's types.
 */
export function grpcClient<T>(protoFile: string, qualifiedService: string, address: string, options: GrpcClientOptions = {}): PromiseClient<T> {
  let root = definitions.get(protoFile);
  if (!root) {
    root = loadPackageDefinition(loadSync(protoFile, { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] }));
    definitions.set(protoFile, root);
  }
  let node: unknown = root;
  for (const part of qualifiedService.split('.')) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function') throw new TypeError(`${qualifiedService} is not a service in ${protoFile}`);
  const client = new (node as new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client)(address, credentials.createInsecure());
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(options.metadata ?? {})) metadata.set(k, v);
  const deadlineMs = options.deadlineMs ?? 10_000;
  return new Proxy({} as PromiseClient<T>, {
    get(_target, property) {
      if (property === 'close') return () => client.close();
      if (property === 'stream') {
        return (name: string, request: unknown) => (client as unknown as Record<string, (r: unknown, m: Metadata) => ClientReadableStream<unknown>>)[name]!.call(client, request, metadata);
      }
      if (typeof property !== 'string' || property === 'then') return undefined;
      const method = (client as unknown as Record<string, unknown>)[property];
      if (typeof method !== 'function') throw new TypeError(`${qualifiedService} has no method ${property}`);
      return (request: unknown) =>
        new Promise((resolve, reject) =>
          (method as (...a: unknown[]) => void).call(client, request, metadata, { deadline: Date.now() + deadlineMs }, (error: ServiceError | null, response: unknown) =>
            error ? reject(error) : resolve(response),
          ),
        );
    },
  });
}
