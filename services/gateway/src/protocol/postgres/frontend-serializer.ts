import { Writer } from 'pg-protocol/dist/buffer-writer.js';
import {
  type FrontendMessage,
  type StartupMessage,
  FrontendMessageCode,
  MAX_SECRET_KEY_LENGTH,
  MIN_SECRET_KEY_LENGTH,
  StartupRequestCode,
} from './frontend-messages.js';
import { count, cstring, int16, int32, uint16, uint32 } from './serializer-checks.js';

// The bytes libpq sends for each message. pg-protocol's own `serialize` is node-postgres's client API (it adds
// client_encoding to every StartupMessage, picks Bind formats from JavaScript types, has a 4-byte cancel key), so
// only its Writer is reused.

const writer = new Writer();

// Fixed messages are shared: do not write into them.
const syncBuffer = codeOnly(FrontendMessageCode.Sync);
const flushBuffer = codeOnly(FrontendMessageCode.Flush);
const terminateBuffer = codeOnly(FrontendMessageCode.Terminate);
const copyDoneBuffer = codeOnly(FrontendMessageCode.CopyDone);
const sslRequestBuffer = requestPacket(StartupRequestCode.SSLRequest);
const gssEncRequestBuffer = requestPacket(StartupRequestCode.GSSENCRequest);

/** The wire bytes of one frontend message. */
export function serializeFrontend(message: FrontendMessage): Buffer {
  try {
    return write(message);
  } catch (error) {
    writer.clear(); // drop what the refused message had written so far
    throw error;
  }
}

function write(message: FrontendMessage): Buffer {
  switch (message.type) {
    case 'startupMessage':
      return startupMessage(message);
    case 'sslRequest':
      return sslRequestBuffer;
    case 'gssEncRequest':
      return gssEncRequestBuffer;
    case 'cancelRequest': {
      const { secretKey } = message;
      if (secretKey.length < MIN_SECRET_KEY_LENGTH || secretKey.length > MAX_SECRET_KEY_LENGTH) {
        throw new RangeError(
          `a cancel secret key is ${MIN_SECRET_KEY_LENGTH} to ${MAX_SECRET_KEY_LENGTH} bytes, not ${secretKey.length}`,
        );
      }
      writer.addInt32(12 + secretKey.length).addInt32(StartupRequestCode.CancelRequest);
      writer.addInt32(int32(message.processId, 'process ID')).add(secretKey);
      return writer.flush();
    }
    case 'query':
      return writer.addCString(cstring(message.text, 'query string')).flush(FrontendMessageCode.Query);
    case 'parse': {
      writer.addCString(cstring(message.statement, 'statement name'));
      writer.addCString(cstring(message.text, 'query string'));
      writer.addInt16(count(message.parameterTypes.length, 'parameter types'));
      for (const oid of message.parameterTypes) {
        writer.addInt32(uint32(oid, 'parameter type OID'));
      }
      return writer.flush(FrontendMessageCode.Parse);
    }
    case 'bind': {
      checkFormatCount(message.parameterFormats.length, message.parameters.length, 'parameter');
      writer.addCString(cstring(message.portal, 'portal name'));
      writer.addCString(cstring(message.statement, 'statement name'));
      formatCodes(message.parameterFormats, 'parameter format codes');
      values(message.parameters, 'parameter values');
      formatCodes(message.resultFormats, 'result format codes');
      return writer.flush(FrontendMessageCode.Bind);
    }
    case 'describe':
      return writer
        .addString(message.target)
        .addCString(cstring(message.name, 'statement or portal name'))
        .flush(FrontendMessageCode.Describe);
    case 'execute':
      return writer
        .addCString(cstring(message.portal, 'portal name'))
        .addInt32(int32(message.maxRows, 'maximum row count'))
        .flush(FrontendMessageCode.Execute);
    case 'close':
      return writer
        .addString(message.target)
        .addCString(cstring(message.name, 'statement or portal name'))
        .flush(FrontendMessageCode.Close);
    case 'sync':
      return syncBuffer;
    case 'flush':
      return flushBuffer;
    case 'terminate':
      return terminateBuffer;
    case 'copyData':
      return writer.add(message.data).flush(FrontendMessageCode.CopyData);
    case 'copyDone':
      return copyDoneBuffer;
    case 'copyFail':
      return writer.addCString(cstring(message.message, 'error message')).flush(FrontendMessageCode.CopyFail);
    case 'functionCall': {
      checkFormatCount(message.argumentFormats.length, message.arguments.length, 'argument');
      writer.addInt32(uint32(message.functionOid, 'function OID'));
      formatCodes(message.argumentFormats, 'argument format codes');
      values(message.arguments, 'arguments');
      writer.addInt16(int16(message.resultFormat, 'result format code'));
      return writer.flush(FrontendMessageCode.FunctionCall);
    }
    case 'passwordMessage':
      return writer
        .addCString(cstring(message.password, 'password'))
        .flush(FrontendMessageCode.AuthenticationResponse);
    case 'saslInitialResponse':
      writer.addCString(cstring(message.mechanism, 'SASL mechanism name'));
      if (message.data === null) {
        writer.addInt32(-1);
      } else {
        writer.addInt32(message.data.length).add(message.data);
      }
      return writer.flush(FrontendMessageCode.AuthenticationResponse);
    case 'saslResponse':
    case 'gssResponse':
      return writer.add(message.data).flush(FrontendMessageCode.AuthenticationResponse);
    default:
      return assertUnreachable(message);
  }
}

function startupMessage(message: StartupMessage): Buffer {
  const { major, minor } = message.protocolVersion;
  writer.addInt32(0); // length, known once the parameters are written
  writer.addInt16(uint16(major, 'protocol major version')).addInt16(uint16(minor, 'protocol minor version'));
  for (const [name, value] of message.parameters) {
    if (name === '') {
      throw new RangeError('a start-up parameter name cannot be empty: the empty name ends the parameter list');
    }
    writer.addCString(cstring(name, 'start-up parameter name'));
    writer.addCString(cstring(value, `value of start-up parameter "${name}"`));
  }
  const packet = writer.addCString('').flush();
  packet.writeInt32BE(packet.length, 0);
  return packet;
}

function formatCodes(codes: readonly number[], elements: string): void {
  writer.addInt16(count(codes.length, elements));
  for (const code of codes) {
    writer.addInt16(int16(code, 'format code'));
  }
}

function values(items: readonly (Buffer | null)[], elements: string): void {
  writer.addInt16(count(items.length, elements));
  for (const value of items) {
    if (value === null) {
      writer.addInt32(-1);
    } else {
      writer.addInt32(value.length).add(value);
    }
  }
}

function checkFormatCount(formats: number, values: number, element: string): void {
  if (formats > 1 && formats !== values) {
    throw new RangeError(
      `${formats} ${element} format codes for ${values} ${element}s: give none, one for all, or one per ${element}`,
    );
  }
}

function codeOnly(code: FrontendMessageCode): Buffer {
  return Buffer.from([code, 0, 0, 0, 4]);
}

function requestPacket(code: StartupRequestCode): Buffer {
  const packet = Buffer.alloc(8);
  packet.writeInt32BE(8, 0);
  packet.writeInt32BE(code, 4);
  return packet;
}

function assertUnreachable(message: never): never {
  throw new Error(`no serializer for frontend message ${JSON.stringify(message)}`);
}
