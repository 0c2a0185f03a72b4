/** The shared blob-store suite (blob-store-suite.ts) on the embedded mode's local dir (recording/blob-fs.ts). */
import { FsBlobStore } from '../../../recording/blob-fs.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { blobStoreSuite } from './blob-store-suite.ts';

blobStoreSuite('local dir', async () => new FsBlobStore(tmpDir('sb-blob-')));
