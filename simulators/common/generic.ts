/** What the two generic providers (A: `generic-json.ts`, B: `generic-xml-csv.ts`) have in common. */
import type { CommonFaults, FaultSwitch } from './http.js';
import type { Commodity } from './load.js';

export interface GenericFaults extends CommonFaults {
  duplicateAcrossPages?: FaultSwitch;
  shiftDuringPaging?: FaultSwitch;
  foreignNextLink?: FaultSwitch<{ origin?: string }>;
  repeatedCursor?: FaultSwitch;
  xmlDoctype?: FaultSwitch;
  csvInjection?: FaultSwitch;
}

export interface CommodityInfo {
  commodity: Commodity;
  decimals: number;
}
