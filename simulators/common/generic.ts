/** What the two generic providers (A: `generic-json.ts`, B: `generic-xml-csv.ts`) have in common. */
import type { CommonFaults, FaultSwitch, SimStats } from './http.js';
import type { Commodity } from './load.js';

export interface GenericFaults extends CommonFaults {
  duplicateAcrossPages?: FaultSwitch;
  shiftDuringPaging?: FaultSwitch;
  foreignNextLink?: FaultSwitch<{ origin?: string }>;
  repeatedCursor?: FaultSwitch;
  xmlDoctype?: FaultSwitch;
  csvInjection?: FaultSwitch;
}

export interface GenericSimulatorBase {
  url: string;
  close(): Promise<void>;
  stats(): SimStats;
  resetStats(): void;
  setFaults(faults: GenericFaults): void;
}

export interface CommodityInfo {
  commodity: Commodity;
  decimals: number;
}
