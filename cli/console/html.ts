/**
 * HTML with every value escaped: `html` is a tagged template whose interpolations are escaped
 * (strings, numbers, anything) unless they are themselves `Html` made by `html` — so a page built
 * only from `html` templates cannot carry a registry string (model name, reason, who, metadata)
 * as markup. Arrays are joined, null/undefined/false render as nothing. There is no other way to
 * make an `Html` (no "raw" escape hatch): our own SVG is built with `html` too.
 */

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** The one escape function: text and attribute values (always written in double quotes). */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Markup made by `html`: the only thing inserted unescaped. */
export class Html {
  readonly #markup: string;
  private constructor(markup: string) {
    this.#markup = markup;
  }
  toString(): string {
    return this.#markup;
  }
  /** Only `html` builds one (a static factory keeps the constructor private to this module). */
  static fromTemplate(strings: TemplateStringsArray, values: readonly unknown[]): Html {
    let out = strings[0] ?? '';
    for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
    return new Html(out);
  }
}

function render(value: unknown): string {
  if (value instanceof Html) return value.toString();
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** Builds markup; every interpolated value is escaped unless it is `Html`. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  return Html.fromTemplate(strings, values);
}
