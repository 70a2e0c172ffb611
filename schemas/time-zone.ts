/**
 * IANA time-zone names, checked through Intl (the same zone database the arithmetic uses).
 */

const validity = new Map<string, boolean>();

/** True when Intl knows the zone (IANA names and 'UTC'); fixed offsets such as "+02:00" are not zones. */
export function isValidTimeZone(zone: string): boolean {
  let ok = validity.get(zone);
  if (ok === undefined) {
    try {
      ok =
        zone.length > 0 &&
        !/^[+-]\d/.test(zone) &&
        new Intl.DateTimeFormat('en-US', { timeZone: zone }) !== undefined;
    } catch {
      ok = false;
    }
    validity.set(zone, ok);
  }
  return ok;
}
