/**
 * Response bodies: content-type checks and parsing of JSON, XML (DOCTYPE/ENTITY declarations are
 * refused before the parser sees them) and CSV. HTML error pages are recognised even when a
 * provider labels them as JSON.
 */
import { XMLParser } from 'fast-xml-parser';
import { errorMessage, MeterflowError } from '../../lib/errors.js';
import { CsvError, parseCsv } from './csv.js';

export type BodyFormat = 'json' | 'xml' | 'csv';

const ACCEPT: Record<BodyFormat, string> = {
  json: 'application/json',
  xml: 'application/xml, text/xml;q=0.9',
  csv: 'text/csv, application/csv;q=0.9, text/plain;q=0.5',
};

export function acceptHeader(format: BodyFormat): string {
  return ACCEPT[format];
}

/** The media type without parameters, lower-case ('' when absent). */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function typeMatches(format: BodyFormat, mt: string): boolean {
  switch (format) {
    case 'json':
      return mt === 'application/json' || mt.endsWith('+json') || mt === 'text/json';
    case 'xml':
      return mt === 'application/xml' || mt === 'text/xml' || mt.endsWith('+xml');
    case 'csv':
      return (
        mt === 'text/csv' ||
        mt === 'application/csv' ||
        mt === 'text/plain' ||
        mt === 'application/vnd.ms-excel'
      );
  }
}

const looksLikeHtml = (text: string): boolean =>
  /^\s*(<!doctype\s+html|<html[\s>])/i.test(text.slice(0, 512));

export interface BodyContext {
  connection: string;
  endpoint: string;
  url: string;
  page?: string | undefined;
}

function where(ctx: BodyContext): string {
  return `connection ${ctx.connection}, endpoint ${ctx.endpoint}${ctx.page !== undefined ? `, page ${ctx.page}` : ''} (${ctx.url})`;
}

/** Throws POLL_RESPONSE_CONTENT_TYPE for HTML or a content type that does not fit the expected format. */
export function checkContentType(
  format: BodyFormat,
  contentType: string | undefined,
  text: string,
  ctx: BodyContext,
): void {
  const mt = mediaType(contentType);
  if (mt === 'text/html' || mt === 'application/xhtml+xml' || looksLikeHtml(text)) {
    throw new MeterflowError(
      'POLL_RESPONSE_CONTENT_TYPE',
      `${where(ctx)}: provider answered with an HTML page (content type ${mt || 'none'}) instead of ${format}`,
      {
        context: { ...ctx, contentType: mt },
      },
    );
  }
  if (mt !== '' && !typeMatches(format, mt)) {
    throw new MeterflowError(
      'POLL_RESPONSE_CONTENT_TYPE',
      `${where(ctx)}: expected ${format}, got content type ${mt}`,
      {
        context: { ...ctx, contentType: mt },
      },
    );
  }
}

const XML_DECLARATIONS = /<!\s*(DOCTYPE|ENTITY)/i;

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  // DOCTYPE is refused before parsing, so no entity can be declared: what is decoded is the
  // predefined (&amp; &lt; ...), numeric (&#x41;) and, leniently, HTML named (&nbsp;) entities.
  processEntities: true,
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

/** V8's JSON.parse message without the quoted body excerpt, printable ASCII only. */
function jsonErrorText(cause: unknown): string {
  return errorMessage(cause)
    .replace(/,?\s*"(?:[^"\\]|\\.)*"(?:\.\.\.)?\s*is not valid JSON/, ' (not valid JSON)')
    .replace(/[^\x20-\x7e]/g, '?');
}

export function parseXmlSafe(text: string, ctx: BodyContext): unknown {
  if (XML_DECLARATIONS.test(text)) {
    throw new MeterflowError(
      'POLL_XML_UNSAFE',
      `${where(ctx)}: XML body carries a DOCTYPE or ENTITY declaration; refused before parsing`,
      {
        context: { ...ctx },
      },
    );
  }
  try {
    return xmlParser.parse(text, true);
  } catch (cause) {
    throw new MeterflowError(
      'POLL_RESPONSE_MALFORMED',
      `${where(ctx)}: XML body does not parse: ${errorMessage(cause)}`,
      { cause, context: { ...ctx } },
    );
  }
}

/** Parses a body of the expected format (content type checked first). */
export function parseBody(
  format: BodyFormat,
  contentType: string | undefined,
  text: string,
  ctx: BodyContext,
): unknown {
  checkContentType(format, contentType, text, ctx);
  switch (format) {
    case 'json':
      try {
        return JSON.parse(text) as unknown;
      } catch (cause) {
        // No cause: V8's message quotes the start of the body, which may echo anything.
        throw new MeterflowError(
          'POLL_RESPONSE_MALFORMED',
          `${where(ctx)}: JSON body of ${text.length} characters does not parse: ${jsonErrorText(cause)}`,
          { context: { ...ctx, bytes: text.length } },
        );
      }
    case 'xml':
      return parseXmlSafe(text, ctx);
    case 'csv':
      try {
        return parseCsv(text);
      } catch (cause) {
        throw new MeterflowError(
          'POLL_RESPONSE_MALFORMED',
          `${where(ctx)}: CSV body does not parse: ${cause instanceof CsvError ? cause.message : errorMessage(cause)}`,
          {
            cause,
            context: { ...ctx },
          },
        );
      }
  }
}
