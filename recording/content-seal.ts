/**
 * Sealing content at submission and opening it for reading (issue 17).
 *
 *   store.submit(handle, args) ──► ContentSealer.seal (installed with store.sealWith)
 *        │  CONTENT_ARGS[reducer]? ── no ──► args unchanged
 *        │  the call: args.call_id, or the agent action / consent row the args name
 *        └► the call's key (recording/content-keys.ts) ──► each content field sealValue()d ──► built, logged
 *
 *   reader (API, console, evidence pack, agent resume) ──► openRows(tenant, table, rows)
 *        └► per call: key ──► CONTENT_COLUMNS opened; a call whose key is gone: the columns read null ('' for text)
 *
 * The FTS index of transcripts is fed through `indexText` (store.indexTextWith): the node that sealed a segment
 * has its key in memory and indexes the opened words; a segment whose key is not in memory is indexed as ''.
 */
import { hkdfSync } from 'node:crypto';
import type { Logger } from 'pino';
import { CONTENT_ARGS, CONTENT_COLUMNS, type SwitchboardTables } from '../schema/index.ts';
import type { CallOf } from '../schema/content.ts';
import { StoreError, type Store, type SubmitOptions } from '../store/index.ts';
import { ContentSealError, isSealed, isSealedText, openText, openValue, sealValue } from './content-crypto.ts';
import type { ContentKey, ContentKeyring } from './content-keys.ts';

type Row = Record<string, unknown>;

const installed = new WeakMap<object, ContentSealer>();

/** The sealer installed on `store` (null: content is not sealed there, e.g. a test's bare store). */
export function sealerOf(store: object): ContentSealer | null {
  return installed.get(store) ?? null;
}

/**
 * A sealed value of `callId`'s `field` opened through the sealer installed on `store`; unsealed values and stores
 * without a sealer pass through. For the bridge: an agent's saved state, an earlier tool result.
 */
export async function openOn(store: object, tenant: string, callId: string, field: string, value: unknown): Promise<unknown> {
  const sealer = sealerOf(store);
  return sealer && isSealed(value) ? sealer.openField(tenant, callId, field, value) : value;
}

/**
 * The key a sensitive tool's args digest is keyed with (agents/tools.ts sensitiveArgs): HKDF-SHA256 of the call's
 * content key, so it is as secret as the content and destroyed with it. Null where the store seals nothing.
 */
export async function digestKeyOn(store: object, tenant: string, callId: string): Promise<Buffer | null> {
  const sealer = sealerOf(store);
  if (!sealer) return null;
  const key = await sealer.keyring.getOrCreate({ tenant, callId });
  return Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), 'switchboard sensitive-args v1', 32));
}

/**
 * Makes (or loads) the call's content key ahead of its first sealed command, so the key's write is not on the
 * path of an agent turn. Resolves when done; never rejects (an erased call's key stays destroyed: its content is
 * then refused at submission, as always).
 */
export async function prewarmContentKey(store: object, tenant: string, callId: string): Promise<void> {
  const sealer = sealerOf(store);
  if (!sealer) return;
  try {
    await sealer.keyring.getOrCreate({ tenant, callId });
  } catch {
    // destroyed (erased) or the blob store failing: the submit path reports it where content is written
  }
}

export class ContentSealer {
  constructor(
    private readonly store: Store<SwitchboardTables>,
    readonly keyring: ContentKeyring,
    private readonly log?: Logger,
  ) {}

  /** Installs sealing on the store's submit path and the opener of its transcript index. */
  install(): void {
    this.store.sealWith((reducer, args, opts) => this.seal(reducer, args, opts));
    this.store.indexTextWith((_index, text, callId) => this.indexText(text, callId));
    // A call erased anywhere (this node, or another in cluster mode) loses its key from this node's memory too.
    this.store.subscribe('content_erasures', {}, null, (d) => {
      const row = d.new as { tenant: string; call_id: string } | null;
      if (row) this.keyring.forget({ tenant: row.tenant, callId: row.call_id });
    });
    installed.set(this.store, this);
  }

  /**
   * A row with its content columns opened with keys held in memory only (no I/O: for ordered, synchronous
   * delivery such as subscription deltas). A column whose key is not in memory reads null ('' for text).
   */
  openRowCached<R extends Row | null>(table: string, row: R): R {
    const columns = CONTENT_COLUMNS[table];
    if (!row || !columns) return row;
    const callId = typeof row.call_id === 'string' ? row.call_id : null;
    if (!callId || !columns.some((c) => isSealed(row[c]))) return row;
    const key = this.keyring.cachedByCall(callId);
    const out: Row = { ...row };
    for (const c of columns) {
      if (!isSealed(row[c])) continue;
      try {
        out[c] = key ? openValue(key.key, callId, c, row[c]) : null;
      } catch {
        out[c] = null;
      }
      if (out[c] === null && table === 'transcript_segments') out[c] = '';
    }
    return out as R;
  }

  /** The args with their content fields sealed (a promise when the call's key must be fetched or made first). */
  seal(reducer: string, args: unknown, opts: SubmitOptions): unknown {
    const spec = CONTENT_ARGS[reducer];
    if (!spec || args === null || typeof args !== 'object') return args;
    const a = args as Row;
    if (!spec.fields.some((f) => a[f] !== undefined && a[f] !== null && !isSealed(a[f]))) return args;
    const callId = this.callOf(spec.call, a, opts.tenant);
    if (!callId) return args; // the reducer refuses it (no such call/row); nothing is logged in clear but an id
    const apply = (k: ContentKey): Row => {
      const out: Row = { ...a };
      for (const f of spec.fields) {
        const plain = out[f];
        if (plain === undefined || plain === null || isSealed(plain)) continue;
        out[f] = sealValue(k.key, callId, f, plain);
        if (f === 'text' && typeof plain === 'string') this.justSealed(out[f] as string, plain);
      }
      return out;
    };
    const refused = (err: unknown): never => {
      if (err instanceof ContentSealError) throw new StoreError('content_erased', err.message);
      throw err;
    };
    try {
      const key = this.keyring.getOrCreate({ tenant: opts.tenant, callId });
      return key instanceof Promise ? key.then(apply, refused) : apply(key);
    } catch (err) {
      return refused(err);
    }
  }

  private callOf(call: CallOf, a: Row, tenant: string): string | null {
    const ref = a[call.arg];
    if (typeof ref !== 'string') return null;
    if (!('table' in call)) return ref;
    const read = this.store.read(tenant);
    const row = call.table === 'agent_actions' ? read.agent_actions.get(ref) : read.consents.get(ref);
    return row?.call_id ?? null;
  }

  /**
   * Texts sealed moments ago, by their ciphertext: the full-text index (fed inside the same command's transaction)
   * takes the words from here instead of decrypting what was just encrypted. Bounded; an entry is taken once.
   */
  private readonly recentTexts = new Map<string, string>();

  private justSealed(sealed: string, plain: string): void {
    this.recentTexts.set(sealed, plain);
    if (this.recentTexts.size > 1024) this.recentTexts.delete(this.recentTexts.keys().next().value as string);
  }

  private indexText(text: string, callId: string): string {
    if (!isSealedText(text)) return text;
    const recent = this.recentTexts.get(text);
    if (recent !== undefined) {
      this.recentTexts.delete(text);
      return recent;
    }
    const key = this.keyring.cachedByCall(callId);
    return key ? openText(key.key, callId, 'text', text) : '';
  }

  /**
   * The rows with their content columns opened. Rows of a call whose key is gone (erased) read null ('' for
   * text); a value that does not open (tampered) is logged and read null.
   */
  async openRows<R extends object>(tenant: string, table: keyof typeof CONTENT_COLUMNS & string, rows: readonly R[]): Promise<R[]> {
    const columns = CONTENT_COLUMNS[table] ?? [];
    const keys = new Map<string, ContentKey | null>();
    const out: R[] = [];
    for (const row of rows) {
      const r = row as Row;
      const callId = typeof r.call_id === 'string' ? r.call_id : null;
      if (!callId || !columns.some((c) => isSealed(r[c]))) {
        out.push(row);
        continue;
      }
      if (!keys.has(callId)) keys.set(callId, await this.keyring.get({ tenant, callId }));
      const key = keys.get(callId) ?? null;
      const opened: Row = { ...r };
      for (const c of columns) {
        if (!isSealed(r[c])) continue;
        try {
          opened[c] = key ? openValue(key.key, callId, c, r[c]) : null;
        } catch (err) {
          this.log?.warn({ call: callId, table, column: c, err }, 'sealed content does not open');
          opened[c] = null;
        }
        if (opened[c] === null && table === 'transcript_segments') opened[c] = '';
      }
      out.push(opened as R);
    }
    return out;
  }

  /** One row opened (see openRows). */
  async openRow<R extends object>(tenant: string, table: keyof typeof CONTENT_COLUMNS & string, row: R): Promise<R> {
    return (await this.openRows(tenant, table, [row]))[0] as R;
  }

  /** A value sealed for `callId`'s `field` opened (e.g. a reducer's result echoing a stored action result). */
  async openField(tenant: string, callId: string, field: string, value: unknown): Promise<unknown> {
    if (!isSealed(value)) return value;
    const key = await this.keyring.get({ tenant, callId });
    return key ? openValue(key.key, callId, field, value) : null;
  }
}
