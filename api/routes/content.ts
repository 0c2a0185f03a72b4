/**
 * Audited retrieval: a call's recording (HTTP Range, decrypted on the fly,
 * `?format=wav|ogg`), its transcript (`?format=json|vtt|txt`), its events
 * with the hash-chain proof, and the evidence pack.
 *
 * Every route commits its access row (who, what, why, from where) through a
 * reducer before the first byte is sent; if that commit fails, the answer is
 * a 503 and nothing is served. A request that serves nothing (404, 416)
 * writes nothing. The purpose comes from `X-Switchboard-Purpose` or
 * `?purpose=`.
 */
import { erasureOf, openSegments } from '../queries/content-open.ts';
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CONTENT_TYPES, convertRecording } from '../../recording/convert.ts';
import { decryptRangeFrom, decryptRecording } from '../../recording/crypto.ts';
import { authorize, type Principal } from '../auth/principal.ts';
import { HttpError, parse, submitAs, type ApiContext } from '../context.ts';
import { buildEvidencePack } from '../evidence/pack.ts';
import { buildCallProof } from '../evidence/proof.ts';
import { CallQueries } from '../queries/calls.ts';
import { toJson, toText, toVtt } from '../queries/transcript-format.ts';
import { parseRange } from '../range.ts';
import { evidence_exported, recording_accessed, transcript_accessed } from '../../schema/reducers.ts';

const IdParam = z.strictObject({ id: z.string().min(1).max(200) });
const purpose = z.string().min(1).max(1000).optional();
const RecordingQuery = z.strictObject({ format: z.enum(['wav', 'ogg']).optional(), purpose });
const TranscriptQuery = z.strictObject({ format: z.enum(['json', 'vtt', 'txt']).default('json'), purpose });
const PurposeQuery = z.strictObject({ purpose });

function purposeOf(req: FastifyRequest, fromQuery: string | undefined): string | null {
  const header = req.headers['x-switchboard-purpose'];
  const value = (typeof header === 'string' ? header : undefined) ?? fromQuery;
  return value ? value.slice(0, 1000) : null;
}

type RecordingRow = NonNullable<ReturnType<ReturnType<ApiContext['store']['read']>['recordings']['get']>>;

/** The call's recording to serve: the newest finalized one. */
function recordingFor(ctx: ApiContext, p: Principal, callId: string): RecordingRow {
  const view = ctx.store.read(p.tenant);
  if (!view.calls.get(callId)) throw new HttpError(404, 'call_not_found', `no call ${callId}`);
  const recs = view.recordings.find({ call_id: callId }, { orderBy: 'started_at', desc: true });
  const rec = recs.find((r) => r.status === 'finalized') ?? recs[0];
  if (!rec) throw new HttpError(404, 'recording_not_found', `call ${callId} has no recording`);
  if (rec.status === 'purged') throw new HttpError(410, 'recording_purged', `recording ${rec.id} was purged after its retention period`);
  if (rec.status === 'failed') throw new HttpError(410, 'recording_failed', `recording ${rec.id} failed: ${rec.failure ?? 'unknown reason'}`);
  if (rec.status !== 'finalized' || rec.uri === null || rec.bytes === null) {
    throw new HttpError(409, 'recording_not_ready', `recording ${rec.id} is ${rec.status}; it can be fetched once the call has ended and it is finalized`, { 'Retry-After': '5' });
  }
  return rec;
}

export function mountContentRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/calls/:id/recording', async (req, reply) => {
    const p = authorize(ctx, req, 'content:read');
    const { id } = parse(IdParam, req.params);
    const q = parse(RecordingQuery, req.query);
    const rec = recordingFor(ctx, p, id);
    const uri = rec.uri as string;
    const stored = rec.format as 'wav' | 'ogg' | 'mp3';
    const format = q.format ?? stored;
    const readBlob = async (): Promise<Buffer> => decryptRecording(await ctx.blobs.get(uri), ctx.master);
    // A converted copy is made in full first (ffmpeg); the stored format is range-decrypted chunk by chunk.
    const converted = format === stored ? null : await convertRecording(await readBlob(), stored, format as 'wav' | 'ogg', { ffmpegPath: ctx.ffmpegPath });
    const size = converted ? converted.length : (rec.bytes as number);
    const range = parseRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, size);
    if (range.kind === 'unsatisfiable') {
      throw new HttpError(416, 'range_not_satisfiable', `the recording has ${size} bytes`, { 'Content-Range': `bytes */${size}` });
    }
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size - 1];
    await submitAs(ctx, p, recording_accessed, {
      call_id: id,
      recording_id: rec.id,
      detail: `${format}${range.kind === 'partial' ? ` bytes=${start}-${end}` : ''}`,
      purpose: purposeOf(req, q.purpose),
      remote: req.ip,
    });
    let body: Buffer;
    if (converted) body = converted.subarray(start, end + 1);
    else if (size === 0) body = Buffer.alloc(0);
    else if (range.kind === 'full') {
      body = await readBlob();
      if (createHash('sha256').update(body).digest('hex') !== rec.sha256) {
        ctx.logger.error({ recording: rec.id }, 'recording does not match its sha256');
        throw new HttpError(500, 'recording_corrupt', `recording ${rec.id} does not match the sha256 recorded when it was finalized`);
      }
    } else {
      const read = ctx.blobs.getRange ? (s: number, e: number) => ctx.blobs.getRange!(uri, s, e) : async (s: number, e: number) => (await ctx.blobs.get(uri)).subarray(s, e + 1);
      body = (await decryptRangeFrom(read, ctx.master, start, end)).data;
    }
    void reply
      .header('Accept-Ranges', 'bytes')
      .header('Content-Type', CONTENT_TYPES[format])
      .header('Cache-Control', 'no-store')
      .header('Content-Disposition', `attachment; filename="${id}.${format}"`);
    if (!converted) void reply.header('ETag', `"${rec.sha256}"`);
    if (range.kind === 'partial') void reply.code(206).header('Content-Range', `bytes ${start}-${end}/${size}`);
    return reply.send(body);
  });

  app.get('/v1/calls/:id/transcript', async (req, reply) => {
    const p = authorize(ctx, req, 'content:read');
    const { id } = parse(IdParam, req.params);
    const q = parse(TranscriptQuery, req.query);
    const queries = new CallQueries(ctx.store, p.tenant);
    const stored = queries.transcript(id);
    if (!stored) throw new HttpError(404, 'call_not_found', `no call ${id}`);
    const segments = await openSegments(ctx.content, p.tenant, stored);
    await submitAs(ctx, p, transcript_accessed, { call_id: id, detail: q.format, purpose: purposeOf(req, q.purpose), remote: req.ip });
    void reply.header('Cache-Control', 'no-store');
    if (q.format === 'vtt') return reply.type('text/vtt; charset=utf-8').send(toVtt(segments));
    if (q.format === 'txt') return reply.type('text/plain; charset=utf-8').send(toText(segments));
    const call = ctx.store.read(p.tenant).calls.get(id);
    return reply.type('application/json').send(toJson(call!, segments));
  });

  app.get('/v1/calls/:id/events', async (req, reply) => {
    const p = authorize(ctx, req, 'content:read');
    const { id } = parse(IdParam, req.params);
    const q = parse(PurposeQuery, req.query);
    if (!ctx.store.read(p.tenant).calls.get(id)) throw new HttpError(404, 'call_not_found', `no call ${id}`);
    // The events carry transcript text in their args: this is content, and audited as an export.
    await submitAs(ctx, p, evidence_exported, { call_id: id, detail: 'events', purpose: purposeOf(req, q.purpose), remote: req.ip });
    const proof = buildCallProof(ctx.store, p.tenant, id);
    if (!proof) throw new HttpError(404, 'call_not_found', `no call ${id}`);
    return reply.header('Cache-Control', 'no-store').send({ ...proof, public_key: ctx.store.publicKeyPem });
  });

  app.get('/v1/calls/:id/evidence', async (req: FastifyRequest, reply: FastifyReply) => {
    const p = authorize(ctx, req, 'evidence:export');
    const { id } = parse(IdParam, req.params);
    const q = parse(PurposeQuery, req.query);
    const queries = new CallQueries(ctx.store, p.tenant);
    const stored = queries.transcript(id);
    if (!stored) throw new HttpError(404, 'call_not_found', `no call ${id}`);
    const segments = await openSegments(ctx.content, p.tenant, stored);
    const call = ctx.store.read(p.tenant).calls.get(id)!;
    const consents = ctx.content ? await ctx.content.openRows(p.tenant, 'consents', ctx.store.read(p.tenant).consents.find({ call_id: id })) : undefined;
    let wav: Buffer | null = null;
    const recs = ctx.store.read(p.tenant).recordings.find({ call_id: id, status: 'finalized' }, { orderBy: 'started_at', desc: true });
    const rec = recs[0];
    if (rec?.uri) wav = decryptRecording(await ctx.blobs.get(rec.uri), ctx.master);
    await submitAs(ctx, p, evidence_exported, { call_id: id, detail: 'pack', purpose: purposeOf(req, q.purpose), remote: req.ip });
    const zip = await buildEvidencePack({
      store: ctx.store,
      tenant: p.tenant,
      callId: id,
      recording: wav ? { wav } : null,
      transcriptVtt: toVtt(segments),
      transcriptJson: toJson(call, segments),
      generatedAt: ctx.now(),
      generatedBy: p.email,
      erasure: erasureOf(ctx.store, p.tenant, id),
      ...(consents ? { consents } : {}),
    });
    return reply
      .header('Content-Type', 'application/zip')
      .header('Cache-Control', 'no-store')
      .header('Content-Disposition', `attachment; filename="evidence-${id}.zip"`)
      .send(zip);
  });
}
