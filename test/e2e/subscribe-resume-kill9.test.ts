/**
 * A subscription survives `kill -9` of the real `switchboard start` process: a client subscribes to `numbers` and
 * takes deltas while another client keeps adding and removing numbers through the API; the gateway is killed
 * mid-stream (the writer's requests fail during the outage and are retried after), restarted on the same data dir,
 * and the subscriber resumes with the last seq it saw. It gets no snapshot, no delta twice, none missed (every
 * write the API acknowledged is one of its deltas), and its rows equal a fresh snapshot.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { api } from '../helpers/api.ts';
import { ADMIN_TOKEN, freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

let gw: GatewayProcess | undefined;
after(async () => {
  await gw?.stop();
});

type Msg = Record<string, unknown> & { type: string };
type Row = Record<string, unknown> & { id: string };

/** Waits (bounded) until `cond` holds, checking on each message and every 100 ms. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A subscriber that keeps its rows and the last seq it saw, and resumes from it when asked to reconnect. */
class Subscriber {
  rows = new Map<string, Row>();
  seq = 0;
  snapshots = 0;
  resumes: Msg[] = [];
  seen = new Set<string>();
  errors: Msg[] = [];
  private ws: WebSocket | null = null;

  async connect(url: string, since: number | null): Promise<void> {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/subscribe`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    this.ws = ws;
    ws.on('message', (d) => this.take(JSON.parse(d.toString()) as Msg));
    ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'subscribe', id: 'n', table: 'numbers', ...(since === null ? {} : { since }) }));
  }

  private take(m: Msg): void {
    if (m.type === 'error') this.errors.push(m);
    if (m.type === 'snapshot') {
      this.snapshots++;
      this.rows = new Map((m.rows as Row[]).map((r) => [r.id, r]));
      this.seq = m.seq as number;
    }
    if (m.type === 'resumed') {
      this.resumes.push(m);
      this.seq = m.seq as number;
    }
    if (m.type === 'delta') {
      const row = (m.new ?? m.old) as Row;
      const key = `${String(m.seq)}/${row.id}`;
      assert.ok(!this.seen.has(key), `delta ${key} delivered twice`);
      this.seen.add(key);
      assert.ok((m.seq as number) >= this.seq, `delta at seq ${String(m.seq)} after what the client saw (${this.seq})`);
      if (m.op === 'delete') {
        assert.ok(this.rows.has(row.id), `delete of ${row.id}, a row the client has`);
        this.rows.delete(row.id);
      } else {
        assert.equal(this.rows.has(row.id), m.op === 'update', `${String(m.op)} of ${row.id}`);
        this.rows.set(row.id, m.new as Row);
      }
      this.seq = m.seq as number;
    }
  }

  close(): void {
    this.ws?.close();
  }
}

/** Adds and removes numbers through the API, retrying each write until the gateway acknowledges it. */
class Writer {
  added = new Set<string>();
  removed = new Set<string>();
  failures = 0;
  stopped = false;
  base = '';

  /** Retries for at most 60 s (the outage and a restart), then fails the test. */
  private async retry<T>(fn: () => Promise<T | null>): Promise<T> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error('a write was not acknowledged within 60 s');
      try {
        const r = await fn();
        if (r !== null) return r;
      } catch {
        // connection refused or reset: the gateway is down; retried below
      }
      this.failures++;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async run(): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const number = `+1555030${String(i).padStart(4, '0')}`;
      const id = await this.retry(async () => {
        const res = await api<{ id?: string; numbers?: Array<{ id: string; number: string }> }>(this.base, 'POST', '/v1/numbers', { body: { number, agent: 'default', provider: 'twilio' } });
        if (res.status === 201) return res.body.id as string;
        if (res.status === 409) {
          // Committed before a kill took the answer away: find it.
          const list = await api<{ numbers: Array<{ id: string; number: string }> }>(this.base, 'GET', '/v1/numbers');
          return list.body.numbers.find((n) => n.number === number)?.id ?? null;
        }
        return null;
      });
      this.added.add(id);
      if (i % 3 === 2) {
        const victim = [...this.added].find((a) => !this.removed.has(a)) as string;
        await this.retry(async () => {
          const res = await api(this.base, 'DELETE', `/v1/numbers/${victim}`);
          return res.status === 200 || res.status === 404 ? true : null;
        });
        this.removed.add(victim);
      }
    }
  }
}

test('kill -9 while commits continue: the subscriber resumes from its last seq with no delta missed or repeated', { timeout: 240_000 }, async () => {
  const port = await freePort();
  const dataDir = tmpDir('sb-subresume-');
  gw = await spawnGateway({ port, dataDir });
  const sub = new Subscriber();
  await sub.connect(gw.publicUrl, null);
  await until(() => sub.snapshots === 1, 10_000, 'the first snapshot');
  const writer = new Writer();
  writer.base = gw.publicUrl;
  const writing = writer.run();
  await until(() => sub.seen.size >= 10, 30_000, 'ten deltas before the kill');

  await gw.kill9();
  sub.close();
  const failuresBefore = writer.failures;
  await until(() => writer.failures > failuresBefore + 3, 30_000, 'the writer fails while the gateway is down');
  const lastSeen = sub.seq;
  gw = await spawnGateway({ port, dataDir });
  await sub.connect(gw.publicUrl, lastSeen);
  await until(() => sub.resumes.length === 1, 30_000, 'resumed after the restart');
  const addedAtResume = writer.added.size;
  await until(() => writer.added.size >= addedAtResume + 10, 60_000, 'ten more writes after the restart');
  writer.stopped = true;
  await writing;

  assert.equal(sub.snapshots, 1, 'no second snapshot: the client kept its rows');
  assert.deepEqual(sub.errors, []);
  assert.equal(sub.resumes[0]!.since, lastSeen);
  // Every acknowledged write reached the subscriber (bounded wait for the last ones' live deltas).
  await until(() => [...writer.added].every((id) => writer.removed.has(id) !== sub.rows.has(id)), 15_000, 'every acknowledged write among the deltas');
  const fresh = new Subscriber();
  await fresh.connect(gw.publicUrl, null);
  await until(() => fresh.snapshots === 1, 10_000, 'a fresh snapshot');
  await until(() => sub.seq >= fresh.seq, 10_000, 'the resumed subscriber reaches the fresh snapshot\'s seq');
  const sortRows = (m: Map<string, Row>): Row[] => [...m.values()].sort((a, b) => a.id.localeCompare(b.id));
  assert.deepEqual(sortRows(sub.rows), sortRows(fresh.rows));
  assert.ok(writer.removed.size > 0 && writer.failures > 0);
  sub.close();
  fresh.close();
});
