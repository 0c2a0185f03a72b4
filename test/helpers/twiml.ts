/** TwiML as the Twilio peer reads it: the verbs of <Response>, with attributes and text. */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface TwimlNode { name: string; attrs: Record<string, string>; children: TwimlNode[]; text: string }

const xml = new XMLParser({
  preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false,
  parseAttributeValue: false, trimValues: true,
});

function toNodes(value: unknown): TwimlNode[] {
  const out: TwimlNode[] = [];
  for (const item of Array.isArray(value) ? (value as unknown[]) : []) {
    if (!item || typeof item !== 'object') continue;
    const rec = item as Record<string, unknown>;
    const attrs: Record<string, string> = {};
    for (const [k, v] of Object.entries((rec[':@'] ?? {}) as Record<string, unknown>)) attrs[k] = String(v);
    for (const [name, kids] of Object.entries(rec)) {
      if (name === ':@' || name === '#text' || name.startsWith('?')) continue;
      const list = Array.isArray(kids) ? (kids as Array<Record<string, unknown>>) : [];
      const text = list.map((k) => (typeof k['#text'] === 'string' ? k['#text'] : '')).join('').trim();
      out.push({ name, attrs, children: toNodes(kids), text });
    }
  }
  return out;
}

/** The verbs inside a TwiML document's <Response>, or null when it is not well-formed TwiML. */
export function parseTwiml(body: string): TwimlNode[] | null {
  if (XMLValidator.validate(body) !== true) return null;
  return toNodes(xml.parse(body) as unknown).find((n) => n.name === 'Response')?.children ?? null;
}
