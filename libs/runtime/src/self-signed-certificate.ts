import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A self-signed certificate for the gateway's client listener, so `sslmode=require` works out of
 * the box in the all-in-one. Node can make keys but not X.509 certificates, so this asks the
 * `openssl` command; production deployments bring their own certificate instead.
 * Files already there are reused.
 */
export async function ensureSelfSignedCertificate(folder: string, commonName = 'tracegate'): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(folder, 'gateway-cert.pem');
  const keyFile = path.join(folder, 'gateway-key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile };
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '825',
      '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', keyFile, '-out', certFile,
    ]);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing
        ? 'the gateway needs a TLS certificate and the openssl command to make one is missing: install openssl (apt-get install openssl), or set TRACEGATE_GATEWAY_TLS_CERT_FILE and TRACEGATE_GATEWAY_TLS_KEY_FILE'
        : `openssl could not make a self-signed certificate: ${(error as Error).message}`,
    );
  }
  return { certFile, keyFile };
}
