import { auditV1 } from '@tracegate/contracts';
import { AuditError, AuditErrorCode } from '../../errors.js';

/** A trace as submitted, checked: what is stored (once masked) and what policy may know of it. */
export interface TraceDocument {
  readonly trace: auditV1.Trace;
  /** Bytes as submitted: the JSON text, or the Trace message's JSON form. */
  readonly sizeBytes: number;
}

export const DEFAULT_TRACE_MAX_BYTES = 1024 * 1024;

/** Trace ids the service hands out: `t-` and a UUID. Anything else cannot name a stored trace. */
export const TRACE_ID = /^t-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// The proto3 JSON names (and their original snake_case spellings, which the JSON mapping also
// accepts). A key outside these is a typo the agent should hear about, not data to drop silently.
const TRACE_KEYS = new Set(['id', 'agent', 'prompt', 'steps', 'confidence', 'sources', 'tags', 'traceparent', 'createdAt', 'created_at']);
const AGENT_KEYS = new Set(['name', 'model', 'version']);
const STEP_KEYS = new Set(['thought', 'tool', 'input', 'outputSummary', 'output_summary']);
// Set by the service: an agent cannot claim an owner, a session or a time.
const SERVICE_FIELDS = new Set(['id', 'createdAt', 'created_at', 'identityId', 'identity_id', 'identityName', 'identity_name', 'sessionId', 'session_id', 'sizeBytes', 'size_bytes']);

function invalid(problem: string): AuditError {
  return new AuditError(AuditErrorCode.InvalidArgument, problem);
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} bytes`;
}

/** RESOURCE_EXHAUSTED above the limit, before anything else is done with the trace. */
export function checkTraceSize(sizeBytes: number, maxBytes: number): void {
  if (sizeBytes <= maxBytes) return;
  throw new AuditError(
    AuditErrorCode.TooLarge,
    `the trace is ${sizeText(sizeBytes)} (${sizeBytes} bytes), more than the ${sizeText(maxBytes)} this service accepts (TRACEGATE_TRACE_MAX_BYTES); shorten the step inputs and output summaries, or summarise them, and submit it again`,
  );
}

/**
 * Reads a submitted trace: exactly one of `trace` (a message) or `trace_json` (the proto3 JSON
 * mapping, as carried inline in a statement comment). Service-set fields must be empty.
 */
export function readSubmittedTrace(request: Pick<auditV1.SubmitRequest, 'trace' | 'traceJson'>, maxBytes: number): TraceDocument {
  const json = request.traceJson;
  if (json !== '' && request.trace) throw invalid('set either trace or trace_json, not both');
  if (json === '' && !request.trace) throw invalid('the request carries no trace: set trace (a Trace message) or trace_json (its JSON form)');
  if (json !== '') {
    const sizeBytes = Buffer.byteLength(json, 'utf8');
    checkTraceSize(sizeBytes, maxBytes);
    return { trace: checkTrace(traceFromJson(json)), sizeBytes };
  }
  const trace = normalised(request.trace!);
  // Measured in its JSON form, as the event and the store carry it, so both ways of submitting
  // meet the same limit for the same trace.
  const sizeBytes = Buffer.byteLength(JSON.stringify(auditV1.Trace.toJSON(trace)), 'utf8');
  checkTraceSize(sizeBytes, maxBytes);
  for (const field of ['id', 'identityId', 'identityName', 'sessionId'] as const) {
    if (trace[field] !== '') throw invalid(`trace.${field} is set by the service; leave it empty`);
  }
  if (trace.createdAt || trace.sizeBytes !== 0) throw invalid('trace.created_at and trace.size_bytes are set by the service; leave them empty');
  return { trace: checkTrace(trace), sizeBytes };
}

/** The gRPC loader gives unset message fields as null; ts-proto's JSON methods expect undefined. */
function normalised(trace: auditV1.Trace): auditV1.Trace {
  return { ...trace, agent: trace.agent ?? undefined, createdAt: trace.createdAt ?? undefined, steps: trace.steps ?? [], sources: trace.sources ?? [], tags: trace.tags ?? [] };
}

function traceFromJson(json: string): auditV1.Trace {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw invalid(`trace_json is not valid JSON (${(error as Error).message}); URL-encode the JSON text of the trace in the comment`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('trace_json must be a JSON object such as {"agent":{"name":"…"},"prompt":"…","confidence":0.9}');
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (SERVICE_FIELDS.has(key)) throw invalid(`trace field '${key}' is set by the service; leave it out`);
    if (!TRACE_KEYS.has(key)) throw invalid(`trace field '${key}' is unknown; a trace has ${[...TRACE_KEYS].filter((k) => !k.includes('_') && !SERVICE_FIELDS.has(k)).join(', ')}`);
  }
  if (object.agent !== undefined) {
    if (object.agent === null || typeof object.agent !== 'object' || Array.isArray(object.agent)) throw invalid('trace field agent must be an object with name, model and version');
    for (const key of Object.keys(object.agent)) if (!AGENT_KEYS.has(key)) throw invalid(`agent field '${key}' is unknown; an agent has name, model and version`);
  }
  if (object.steps !== undefined) {
    if (!Array.isArray(object.steps)) throw invalid('trace field steps must be an array of {thought, tool, input, outputSummary}');
    object.steps.forEach((step: unknown, i) => {
      if (step === null || typeof step !== 'object' || Array.isArray(step)) throw invalid(`steps[${i}] must be an object with thought, tool, input and outputSummary`);
      for (const key of Object.keys(step)) if (!STEP_KEYS.has(key)) throw invalid(`steps[${i}] field '${key}' is unknown; a step has thought, tool, input and outputSummary`);
    });
  }
  for (const key of ['prompt', 'traceparent'] as const) {
    if (object[key] !== undefined && typeof object[key] !== 'string') throw invalid(`trace field ${key} must be a string`);
  }
  for (const key of ['sources', 'tags'] as const) {
    const list = object[key];
    if (list !== undefined && (!Array.isArray(list) || list.some((item) => typeof item !== 'string'))) throw invalid(`trace field ${key} must be an array of strings`);
  }
  if (object.confidence !== undefined && typeof object.confidence !== 'number') throw invalid('trace field confidence must be a number from 0 to 1');
  return auditV1.Trace.fromJSON(object);
}

const W3C_TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

function checkTrace(trace: auditV1.Trace): auditV1.Trace {
  if (!Number.isFinite(trace.confidence) || trace.confidence < 0 || trace.confidence > 1) {
    throw invalid(`trace confidence ${trace.confidence} is not between 0 and 1; state how sure the agent is as a fraction (0.9 for 90 %)`);
  }
  if (trace.traceparent !== '' && !W3C_TRACEPARENT.test(trace.traceparent)) {
    throw invalid(`traceparent '${trace.traceparent.slice(0, 80)}' is not a W3C traceparent (version-traceid-parentid-flags, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01)`);
  }
  return trace;
}

/**
 * The free text of a trace, where secrets can hide: prompt, each step's thought, input and output
 * summary, and the sources. Names (agent, model, tool) and tags are identifiers and policy input,
 * and are kept as they are.
 */
export function freeTextOf(trace: auditV1.Trace): string[] {
  return [trace.prompt, ...trace.steps.flatMap((s) => [s.thought, s.input, s.outputSummary]), ...trace.sources];
}

/** The trace with its free text replaced, in the order {@link freeTextOf} lists it. */
export function withFreeText(trace: auditV1.Trace, texts: readonly string[]): auditV1.Trace {
  const expected = 1 + trace.steps.length * 3 + trace.sources.length;
  if (texts.length !== expected) throw new Error(`expected ${expected} texts for the trace, got ${texts.length}`);
  let i = 0;
  const next = () => texts[i++]!;
  const prompt = next();
  const steps = trace.steps.map((s) => ({ ...s, thought: next(), input: next(), outputSummary: next() }));
  const sources = trace.sources.map(() => next());
  return { ...trace, prompt, steps, sources };
}

export function featuresOf(trace: Pick<auditV1.Trace, 'confidence' | 'agent' | 'tags'>): auditV1.TraceFeatures {
  return { present: true, confidence: trace.confidence, model: trace.agent?.model ?? '', tags: [...trace.tags] };
}
