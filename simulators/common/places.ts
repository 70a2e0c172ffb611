/** Small deterministic vocabularies for realistic entity metadata. */
import type { Rng } from './prng.js';
import { pick, randInt } from './prng.js';
import type { BuildingKind } from './load.js';

export interface Place {
  city: string;
  state: string;
  country: string;
  postalPrefix: string;
  timeZone: string;
  latitude: number;
  longitude: number;
}

export const PLACES: Record<string, Place[]> = {
  'America/New_York': [
    {
      city: 'New York',
      state: 'NY',
      country: 'US',
      postalPrefix: '100',
      timeZone: 'America/New_York',
      latitude: 40.7,
      longitude: -74.0,
    },
    {
      city: 'Boston',
      state: 'MA',
      country: 'US',
      postalPrefix: '021',
      timeZone: 'America/New_York',
      latitude: 42.4,
      longitude: -71.1,
    },
    {
      city: 'Philadelphia',
      state: 'PA',
      country: 'US',
      postalPrefix: '191',
      timeZone: 'America/New_York',
      latitude: 40.0,
      longitude: -75.2,
    },
  ],
  'America/Chicago': [
    {
      city: 'Chicago',
      state: 'IL',
      country: 'US',
      postalPrefix: '606',
      timeZone: 'America/Chicago',
      latitude: 41.9,
      longitude: -87.6,
    },
    {
      city: 'Dallas',
      state: 'TX',
      country: 'US',
      postalPrefix: '752',
      timeZone: 'America/Chicago',
      latitude: 32.8,
      longitude: -96.8,
    },
  ],
  'America/Los_Angeles': [
    {
      city: 'Los Angeles',
      state: 'CA',
      country: 'US',
      postalPrefix: '900',
      timeZone: 'America/Los_Angeles',
      latitude: 34.1,
      longitude: -118.2,
    },
    {
      city: 'San Francisco',
      state: 'CA',
      country: 'US',
      postalPrefix: '941',
      timeZone: 'America/Los_Angeles',
      latitude: 37.8,
      longitude: -122.4,
    },
  ],
  'Europe/Helsinki': [
    {
      city: 'Helsinki',
      state: 'Uusimaa',
      country: 'FI',
      postalPrefix: '00',
      timeZone: 'Europe/Helsinki',
      latitude: 60.2,
      longitude: 24.9,
    },
    {
      city: 'Espoo',
      state: 'Uusimaa',
      country: 'FI',
      postalPrefix: '02',
      timeZone: 'Europe/Helsinki',
      latitude: 60.2,
      longitude: 24.7,
    },
    {
      city: 'Tampere',
      state: 'Pirkanmaa',
      country: 'FI',
      postalPrefix: '33',
      timeZone: 'Europe/Helsinki',
      latitude: 61.5,
      longitude: 23.8,
    },
    {
      city: 'Oulu',
      state: 'Pohjois-Pohjanmaa',
      country: 'FI',
      postalPrefix: '90',
      timeZone: 'Europe/Helsinki',
      latitude: 65.0,
      longitude: 25.5,
    },
  ],
  'Europe/Berlin': [
    {
      city: 'Berlin',
      state: 'BE',
      country: 'DE',
      postalPrefix: '10',
      timeZone: 'Europe/Berlin',
      latitude: 52.5,
      longitude: 13.4,
    },
  ],
  UTC: [
    {
      city: 'London',
      state: 'England',
      country: 'GB',
      postalPrefix: 'EC1',
      timeZone: 'UTC',
      latitude: 51.5,
      longitude: -0.1,
    },
    {
      city: 'Reykjavik',
      state: 'Capital Region',
      country: 'IS',
      postalPrefix: '10',
      timeZone: 'UTC',
      latitude: 64.1,
      longitude: -21.9,
    },
  ],
};

export function placeFor(rng: Rng, timeZone: string): Place {
  const list = PLACES[timeZone];
  if (list && list.length > 0) return pick(rng, list);
  return {
    city: 'Springfield',
    state: 'XX',
    country: 'US',
    postalPrefix: '000',
    timeZone,
    latitude: 45,
    longitude: 0,
  };
}

const STREETS = [
  'Main St',
  'Oak Ave',
  'Maple Dr',
  'Park Rd',
  'Cedar Ln',
  'Elm St',
  'Lake View',
  'Harbor Blvd',
  'Mill Rd',
  'Station Sq',
];
const FI_STREETS = [
  'Mannerheimintie',
  'Hämeentie',
  'Aleksanterinkatu',
  'Tehtaankatu',
  'Itäinen Pitkäkatu',
  'Kauppakatu',
  'Sähkötie',
];

export function streetFor(rng: Rng, place: Place): string {
  if (place.country === 'FI') return `${pick(rng, FI_STREETS)} ${randInt(rng, 1, 120)}`;
  return `${randInt(rng, 1, 9999)} ${pick(rng, STREETS)}`;
}

export function postalFor(rng: Rng, place: Place): string {
  if (place.country === 'FI')
    return `${place.postalPrefix}${String(randInt(rng, 100, 990)).padStart(3, '0')}`;
  if (place.country === 'GB') return `${place.postalPrefix} ${randInt(rng, 1, 9)}AB`;
  if (place.country === 'DE') return `${place.postalPrefix}${String(randInt(rng, 100, 999))}`;
  if (place.country === 'IS') return `${place.postalPrefix}${randInt(rng, 1, 9)}`;
  return `${place.postalPrefix}${String(randInt(rng, 1, 99)).padStart(2, '0')}`;
}

export const BUILDINGS: BuildingKind[] = [
  'office',
  'office',
  'retail',
  'school',
  'residential',
  'warehouse',
  'hospital',
];

export const BUILDING_LABEL: Record<BuildingKind, string> = {
  office: 'Office',
  retail: 'Retail',
  school: 'School',
  residential: 'Multifamily Residential',
  warehouse: 'Warehouse',
  hospital: 'Hospital',
};

const NAME_WORDS = [
  'North',
  'South',
  'Central',
  'Riverside',
  'Harbor',
  'Hillside',
  'Park',
  'Lakeside',
  'West',
  'East',
  'Airport',
  'Old Town',
];

export function buildingName(rng: Rng, building: BuildingKind, city: string): string {
  const kind: Record<BuildingKind, string[]> = {
    office: ['Office Tower', 'Business Center', 'Offices'],
    retail: ['Shopping Center', 'Retail Park', 'Store'],
    school: ['Elementary School', 'High School', 'Campus'],
    residential: ['Apartments', 'Residences', 'Housing'],
    warehouse: ['Logistics Hub', 'Distribution Center', 'Warehouse'],
    hospital: ['Medical Center', 'Hospital', 'Clinic'],
  };
  return `${city} ${pick(rng, NAME_WORDS)} ${pick(rng, kind[building])}`;
}
