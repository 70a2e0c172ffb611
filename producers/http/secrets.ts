/**
 * Secrets come only from environment variables NAMED in the connection (`...Env` fields). They
 * are resolved once when a connection starts; a missing variable fails with its name, never a value.
 */
import { MeterflowError } from '../../lib/errors.js';
import type { AuthConfig } from '../../schemas/connection.js';
import { looksLikeSecret } from '../../schemas/secret-names.js';

export { looksLikeSecret };

export type Env = Record<string, string | undefined>;

/** How a variable name may be printed: a secret-looking one only as a fingerprint. */
export function shownEnvName(name: string): string {
  return looksLikeSecret(name) ? `${name.slice(0, 4)}…(${name.length} chars)` : name;
}

export function requireEnv(env: Env, name: string, connectionId: string): string {
  if (looksLikeSecret(name)) {
    const shown = shownEnvName(name);
    throw new MeterflowError(
      'CFG_INVALID',
      `connection ${connectionId}: an ...Env field holds ${shown}, which looks like a secret value; give the NAME of an environment variable that holds it`,
      { context: { connection: connectionId, variable: shown } },
    );
  }
  const v = env[name];
  if (v === undefined || v === '') {
    throw new MeterflowError(
      'CFG_SECRET_MISSING',
      `connection ${connectionId}: environment variable ${name} is not set`,
      {
        context: { connection: connectionId, variable: name },
      },
    );
  }
  return v;
}

/** Every environment variable name an auth block refers to. */
export function secretEnvNames(auth: AuthConfig): string[] {
  switch (auth.type) {
    case 'apiKey':
      return auth.keys.map((k) => k.valueEnv);
    case 'basic':
      return [auth.usernameEnv, auth.passwordEnv];
    case 'oauth2ClientCredentials':
      return [auth.clientIdEnv, auth.clientSecretEnv];
    case 'oauth2Password':
      return [
        auth.clientIdEnv,
        ...(auth.clientSecretEnv ? [auth.clientSecretEnv] : []),
        auth.usernameEnv,
        auth.passwordEnv,
      ];
    case 'bearer':
      return [auth.tokenEnv];
    case 'none':
      return [];
  }
}
