/**
 * Arcadia connections on a simulator, as a connection file would hold them: OAuth2 client
 * credentials read from `<PREFIX>_ID` and `<PREFIX>_SECRET`, data from 2024-01-01; `extra` adds
 * or replaces top-level fields.
 */
import type { ConnectionInput } from '../../schemas/connection.js';
import type { ArcadiaSimulator } from '../../simulators/arcadia.js';

export function arcadiaConnectionFile(
  sim: ArcadiaSimulator,
  id: string,
  envPrefix: string,
  extra: Partial<ConnectionInput> = {},
): ConnectionInput {
  return {
    id,
    provider: 'arcadia',
    baseUrls: { production: sim.url },
    auth: {
      type: 'oauth2ClientCredentials',
      tokenUrl: '/oauth2/token',
      clientIdEnv: `${envPrefix}_ID`,
      clientSecretEnv: `${envPrefix}_SECRET`,
    },
    usageStart: '2024-01-01',
    ...extra,
  };
}

/** The environment that carries the simulator's client credentials for `envPrefix`. */
export const arcadiaCredentials = (sim: ArcadiaSimulator, envPrefix: string): Record<string, string> => ({
  [`${envPrefix}_ID`]: sim.options.clientId,
  [`${envPrefix}_SECRET`]: sim.options.clientSecret,
});

/** A month of normalized data from a simulator that activates at once, asked patiently but fast. */
export const quickArcadia = (sim: ArcadiaSimulator): Partial<ConnectionInput> => ({
  timeZone: 'Europe/Helsinki',
  usageStart: '2024-03-01',
  http: { timeoutMs: 10_000, maxResponseBytes: 8388608, maxRetries: 4, backoffBaseMs: 10, backoffMaxMs: 100 },
  options: {
    correlationId: sim.truth().credentials.map((c) => c.correlationId),
    intervals: 'normalized',
    activationPollMs: 50,
  },
});
