/**
 * A client's text or value inside an error message, in bounded size and time: no path, name or
 * body can make an error message large, slow or fail to be written.
 */

/** At most `max` characters of `text`, with an ellipsis when cut. */
export function truncate(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * A client's value in an error message, in bounded size and time: never walks into the value, so
 * no nesting depth or size can make an error message fail.
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(truncate(value, 20));
  return typeof value === 'object' ? 'an object' : String(value);
}
