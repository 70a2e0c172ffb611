/**
 * Opaque page tokens: base64url JSON of an offset and a binding (the request's other parameters,
 * or the seed), so a token only works where it was issued and a garbled one is told apart (null).
 */
export function encodeOffsetToken(offset: number, bind: string | number): string {
  return Buffer.from(JSON.stringify({ o: offset, k: bind }), 'utf8').toString('base64url');
}

/** The offset of a token issued with the same binding, or null (garbled, foreign or negative). */
export function decodeOffsetToken(token: string, bind: string | number): number | null {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown; k?: unknown };
    return typeof v.o === 'number' && Number.isInteger(v.o) && v.o >= 0 && v.k === bind ? v.o : null;
  } catch {
    return null;
  }
}
