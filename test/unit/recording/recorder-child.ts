/**
 * Child process for the kill -9 recovery test: records a 440 Hz caller tone in
 * real time (20 ms frames on a timer) into DIR and prints `flushed N` each time
 * the recorder's flushed byte count changes. stdout to a pipe is synchronous
 * on Linux, so a printed count was reached before the parent's kill.
 *
 *   node --import tsx recorder-child.ts DIR ANSWERED_AT_MS
 */
import { Recorder } from '../../../recording/recorder.ts';
import { ToneSource, CALLER_HZ } from './helpers.ts';

const [dir, answered] = process.argv.slice(2);
if (!dir || !answered) throw new Error('usage: recorder-child DIR ANSWERED_AT_MS');
const rec = new Recorder({ dir, startedAtMs: Number(answered), nowMs: Date.now, flushIntervalMs: 100 });
const tone = new ToneSource(CALLER_HZ);
let last = -1;
process.stdout.write(`ready ${rec.startMs}\n`);
setInterval(() => {
  rec.process(tone.frame(), 'caller');
  if (rec.flushedBytes !== last) {
    last = rec.flushedBytes;
    process.stdout.write(`flushed ${last}\n`);
  }
}, 20);
