/**
 * A campaign's numbers from a CSV upload (`POST /v1/campaigns`, `text/csv`): a header row with a `number` column
 * and optional `timezone` and `name` columns (any order, any case; other columns ignored), then one number a row.
 * RFC 4180 quoting (`"…"`, `""` for a quote), CRLF or LF, a UTF-8 BOM, blank lines skipped. A problem is a
 * `CsvError` naming the line.
 */

export interface CsvNumber {
  number: string;
  name: string | null;
  timezone: string | null;
}

export class CsvError extends Error {}

/** Splits CSV text into rows of fields (linear time). */
export function csvRows(text: string): Array<{ line: number; fields: string[] }> {
  const rows: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  const s = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const endRow = (): void => {
    fields.push(field);
    if (fields.length > 1 || fields[0]!.trim() !== '') rows.push({ line: rowLine, fields });
    fields = [];
    field = '';
  };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') fields.push(field), (field = '');
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && s[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else field += ch;
  }
  if (quoted) throw new CsvError(`line ${rowLine}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0) endRow();
  return rows;
}

/** The numbers of a campaign CSV. */
export function parseCampaignCsv(text: string): CsvNumber[] {
  return parseCampaignCsvLines(text).map((r) => r.entry);
}

/** The numbers of a campaign CSV with the line each came from (for per-row errors). */
export function parseCampaignCsvLines(text: string): Array<{ line: number; entry: CsvNumber }> {
  const rows = csvRows(text);
  if (rows.length === 0) throw new CsvError('the CSV is empty: a header row with a `number` column, then one number a row');
  const header = rows[0]!.fields.map((h) => h.trim().toLowerCase());
  const col = (name: string): number => header.indexOf(name);
  const numberCol = col('number');
  if (numberCol < 0) throw new CsvError(`line ${rows[0]!.line}: no \`number\` column in the header (${header.join(', ')})`);
  const tzCol = col('timezone');
  const nameCol = col('name');
  const out: Array<{ line: number; entry: CsvNumber }> = [];
  for (const { line, fields } of rows.slice(1)) {
    const number = (fields[numberCol] ?? '').trim();
    if (number === '') throw new CsvError(`line ${line}: the number is empty`);
    const opt = (i: number): string | null => (i < 0 ? null : (fields[i] ?? '').trim() || null);
    out.push({ line, entry: { number, name: opt(nameCol), timezone: opt(tzCol) } });
  }
  if (out.length === 0) throw new CsvError('the CSV has a header but no numbers');
  return out;
}
