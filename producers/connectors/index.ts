/** Connector registry: provider kind → connector. */
import type { ConnectionConfig } from '../../schemas/connection.js';
import { ArcadiaConnector } from './arcadia/index.js';
import { EnerKeyConnector } from './enerkey/index.js';
import { GenericConnector } from './generic/index.js';
import type { Connector } from './types.js';

export type { Connector, ConnectorContext, EntitySnapshot, MeterRef, UsageStream } from './types.js';
export { ArcadiaConnector, EnerKeyConnector, GenericConnector };

export function createConnector(connection: ConnectionConfig): Connector {
  switch (connection.provider) {
    case 'arcadia':
      return new ArcadiaConnector(connection);
    case 'enerkey':
      return new EnerKeyConnector(connection);
    case 'generic':
      return new GenericConnector(connection);
  }
}
