// kokorod player: an AudioWorkletProcessor that plays float32 PCM gaplessly.
//
// The main thread (app.js) posts decoded frames here; this processor copies
// them into a ring buffer and drains it one render quantum at a time. Because
// it runs on the audio rendering thread, the sample count it reports back *is*
// the audio clock: app.js uses it (not the arrival time of messages) to decide
// which word is being heard.
//
// Messages in:
//   {type: "push", utterance, offset, samples: Float32Array}  queue audio
//   {type: "end", utterance}   no more audio will come for it (so running dry is not a gap)
//   {type: "flush"}            drop everything queued, now
// Messages out, about every 20 ms while audio plays and for a second after:
//   {type: "progress", utterance, played, at, buffered, peak, underruns}
//     played    samples of `utterance` output so far = its timeline position
//     at        context time right after the last sample output, i.e. when
//               sample `played` would begin to sound
//     buffered  samples still queued (all utterances)
//     peak      max |sample| written to the output since the processor started
//     underruns times the buffer ran dry in the middle of an utterance

const REPORT_EVERY_S = 0.02;
// After the buffer drains, keep reporting for a while so the main thread sees
// the audio clock pass the end of the utterance: the output device may still
// be sounding it for a few hundred ms (Bluetooth especially).
const TAIL_REPORT_S = 1.0;

class KokorodPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    // 20 s to start with, grown on demand: the daemon may run ahead of
    // playback by several seconds, and dropping audio is never acceptable.
    this.ring = new Float32Array(sampleRate * 20);
    this.readPos = 0;
    this.size = 0;
    // FIFO of {utterance, offset, left}: which utterance the queued samples
    // belong to, in ring order, and where they sit on its timeline.
    this.segments = [];
    this.utterance = null; // utterance of the last sample output
    this.played = 0;       // its timeline position after that sample
    this.at = 0;
    this.open = null;      // utterance whose audio is still expected to continue
    this.dry = true;
    this.peak = 0;
    this.underruns = 0;
    this.quanta = 0;
    this.reportEvery = Math.max(1, Math.round((REPORT_EVERY_S * sampleRate) / 128));
    this.tailLeft = 0;     // seconds of progress reports still owed after draining
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(msg) {
    if (msg.type === "push") {
      this.push(msg.utterance, msg.offset, msg.samples);
      this.open = msg.utterance;
    } else if (msg.type === "end") {
      if (this.open === msg.utterance) this.open = null;
    } else if (msg.type === "flush") {
      this.readPos = 0;
      this.size = 0;
      this.segments.length = 0;
      this.open = null;
      this.report(); // let the main thread see "nothing buffered" at once
    }
  }

  push(utterance, offset, samples) {
    if (this.size + samples.length > this.ring.length) this.grow(this.size + samples.length);
    const cap = this.ring.length;
    const writePos = (this.readPos + this.size) % cap;
    // Copy in at most two pieces: up to the end of the ring, then from its start.
    const first = Math.min(samples.length, cap - writePos);
    this.ring.set(samples.subarray(0, first), writePos);
    if (first < samples.length) this.ring.set(samples.subarray(first), 0);
    this.size += samples.length;
    const last = this.segments[this.segments.length - 1];
    if (last && last.utterance === utterance && last.offset + last.left === offset) {
      last.left += samples.length; // the usual case: the next contiguous frame
    } else {
      this.segments.push({ utterance, offset, left: samples.length });
    }
  }

  grow(needed) {
    let cap = this.ring.length * 2;
    while (cap < needed) cap *= 2;
    const bigger = new Float32Array(cap);
    const first = Math.min(this.size, this.ring.length - this.readPos);
    bigger.set(this.ring.subarray(this.readPos, this.readPos + first), 0);
    bigger.set(this.ring.subarray(0, this.size - first), first);
    this.ring = bigger;
    this.readPos = 0;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    const cap = this.ring.length;
    let i = 0;
    while (i < out.length && this.size > 0) {
      const seg = this.segments[0];
      const n = Math.min(out.length - i, seg.left, cap - this.readPos);
      let peak = this.peak;
      for (let k = 0; k < n; k++) {
        const s = this.ring[this.readPos + k];
        out[i + k] = s;
        const a = s < 0 ? -s : s;
        if (a > peak) peak = a;
      }
      this.peak = peak;
      this.readPos = (this.readPos + n) % cap;
      this.size -= n;
      i += n;
      seg.left -= n;
      seg.offset += n;
      this.utterance = seg.utterance;
      this.played = seg.offset;
      // `currentTime` is the context time of this quantum's first sample.
      this.at = currentTime + i / sampleRate;
      if (seg.left === 0) this.segments.shift();
    }
    if (i < out.length) {
      out.fill(0, i);
      // Running dry while the utterance is still open is an audible gap
      // (synthesis or the network fell behind). Count each gap once.
      if (!this.dry && this.open !== null) this.underruns++;
      this.dry = true;
    } else {
      this.dry = false;
    }
    if (i > 0) this.tailLeft = TAIL_REPORT_S;
    else if (this.tailLeft > 0) this.tailLeft -= out.length / sampleRate;

    if (++this.quanta % this.reportEvery === 0 && this.tailLeft > 0) this.report();
    return true; // stay alive: the node idles in silence between utterances
  }

  report() {
    this.port.postMessage({
      type: "progress",
      utterance: this.utterance,
      played: this.played,
      at: this.at,
      buffered: this.size,
      peak: this.peak,
      underruns: this.underruns,
    });
  }
}

registerProcessor("kokorod-player", KokorodPlayer);
