/**
 * Secrets come only from environment variables NAMED in the connection (`...Env` fields). They
 * are resolved once when a connection starts; a missing variable fails with its name, never a value.
 */
import { MeterflowError } from '../../lib/errors.js';
import type { AuthConfig } from '../../schemas/connection.js';

export type Env = Record<string, string | undefined>;

export function requireEnv(env: Env, name: string, connectionId: string): string {
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
