/**
 * Where this node finds a deployed agent's code: DATA_DIR/agents/<sha256>.mjs, content-addressed, which the worker
 * loads. In cluster mode the bundle is also in the cluster's object store (store/jetstream-blobs.ts) under
 * `bundles/<sha256>.mjs`, put there by the deploying node before `agent_version_deployed` is submitted; any other
 * node that needs the version (it went live through the log, or a call pinned to it resumed here) fetches it,
 * checks its sha256 and writes the local file. Embedded mode (no blob store) keeps the local file only.
 *
 *   deploy on A:  local file ─► object `bundles/<sha>.mjs` ─► agent_version_deployed … agent_version_live
 *   node B:       agent_versions row live (log) ─► local file missing? fetch, check sha256, write ─► worker
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BlobStore } from '../store/index.ts';
import { sha256 } from './bundle.ts';

export class BundleFiles {
  constructor(
    private readonly dir: string,
    private readonly shared?: BlobStore,
  ) {}

  path(digest: string): string {
    return path.join(this.dir, `${digest}.mjs`);
  }

  private key(digest: string): string {
    return `bundles/${digest}.mjs`;
  }

  /** Stores `code` locally and, in cluster mode, in the object store (before the deploy is logged). */
  async store(code: string): Promise<string> {
    const digest = sha256(code);
    this.writeLocal(digest, code);
    if (this.shared && !(await this.shared.exists(this.shared.uriFor(this.key(digest))))) {
      await this.shared.put(this.key(digest), Buffer.from(code, 'utf8'));
    }
    return digest;
  }

  /** The local file of `digest`, fetched from the object store when this node does not have it yet. */
  async ensure(digest: string): Promise<string> {
    const file = this.path(digest);
    if (fs.existsSync(file) || !this.shared) return file;
    const code = (await this.shared.get(this.shared.uriFor(this.key(digest)))).toString('utf8');
    if (sha256(code) !== digest) throw new Error(`agent bundle ${digest} from the object store does not match its sha256`);
    this.writeLocal(digest, code);
    return file;
  }

  private writeLocal(digest: string, code: string): void {
    const file = this.path(digest);
    if (fs.existsSync(file)) return;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, code, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
}
