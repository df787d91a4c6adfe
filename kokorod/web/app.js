// kokorod browser client: plain ES module, no build step, no dependencies.
//
// Data flow:
//   WebSocket (subprotocol kokorod.v1.json)
//     text frames   -> JSON events (ready, chunk, word, done, cancelled, error)
//     binary frames -> [u32 header length][JSON header][audio bytes]
//       pcm_s16le: the bytes are PCM                      -> float32
//       opus:      Ogg pages -> packets -> WebCodecs AudioDecoder (48 kHz)
//                  -> pre-skip dropped -> halfband decimation to 24 kHz -> float32
//   float32 frames -> AudioWorklet ring buffer (player-worklet.js) -> speakers
//   worklet        -> {utterance, played, at} about every 20 ms -> word highlight
//
// The page asks for Opus (about a tenth of the bytes) when this browser's
// WebCodecs can decode it and the AudioContext runs at 24 kHz; otherwise it
// stays on PCM and says why (#format, window.kokorodTest.formatReason).
// `?format=pcm_s16le` or `?format=opus` on the page URL overrides the choice.
//
// The highlight follows the audio clock (samples the worklet has actually
// output, corrected by the output latency), never the arrival time of `word`
// events: the daemon sends words and audio well ahead of playback.

const SUBPROTOCOL = "kokorod.v1.json";
const TOKEN_PREFIX = "kokorod.token.";
const MODEL_RATE = 24000;
const DEMO_WORDS_PER_S = 20;
const DEMO_TEXT =
  "Streaming speech means the listener does not wait for the whole answer. " +
  "While a language model is still writing, kokorod is already speaking the first sentence, " +
  "and each new fragment of text joins the same utterance as it arrives. " +
  "Press stop at any moment and the audio ends at once, on this side and on the server.";

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("speak-form"),
  text: $("text"),
  voice: $("voice"),
  speed: $("speed"),
  speedValue: $("speed-value"),
  speak: $("speak"),
  demo: $("demo"),
  stop: $("stop"),
  transcript: $("transcript"),
  conn: $("conn"),
  state: $("state"),
  latency: $("latency"),
  format: $("format"),
  bytes: $("bytes"),
  message: $("message"),
};

// ---------------------------------------------------------------------------
// Hooks for the browser test (tests/e2e/test_browser.py). Read-only by intent.

const test = {
  state: "connecting",   // connecting | idle | speaking | disconnected
  utterance: null,       // id of the utterance shown in the transcript
  wordsHighlighted: [],  // texts of the current utterance's words, in highlight order
  highlightTimes: [],    // the audio clock (seconds heard, player.heardTime()) at each highlight
  playedSamples: 0,      // worklet-reported position of the utterance last played
  outputPeak: 0,         // max |sample| the worklet wrote to its output, ever
  underruns: 0,          // gaps: the ring buffer ran dry mid-utterance
  buffered: 0,           // samples queued in the worklet
  firstAudioMs: null,
  format: null,          // audio format asked of the daemon: "opus" or "pcm_s16le"
  formatReason: "",      // why that one
  audioBytes: 0,         // audio payload bytes received for the current utterance
  pcmBytes: 0,           // what 16-bit PCM would have taken for the same samples
  decodedSamples: 0,     // samples of the current utterance handed to the worklet
  capture: null,         // set to [] to keep those samples (arrays of numbers), per utterance
  ctxTime: () => (player.ctx ? player.ctx.currentTime : 0),
};
window.kokorodTest = test;

// ---------------------------------------------------------------------------
// Audio output

const player = {
  ctx: null,
  node: null,
  starting: null,
  onProgress: () => {},

  // Must first run inside a user gesture (click), or autoplay rules keep the
  // context suspended. Safe to call on every click.
  async start() {
    if (!this.starting) this.starting = this.create();
    await this.starting;
    if (this.ctx.state !== "running") await this.ctx.resume();
  },

  async create() {
    try {
      // At the model's rate no resampling happens anywhere.
      this.ctx = new AudioContext({ sampleRate: MODEL_RATE, latencyHint: "interactive" });
    } catch {
      // A browser that cannot run at 24 kHz: use its own rate and let the
      // daemon resample (see negotiateAudio).
      this.ctx = new AudioContext({ latencyHint: "interactive" });
    }
    await this.ctx.audioWorklet.addModule(new URL("player-worklet.js", import.meta.url));
    this.node = new AudioWorkletNode(this.ctx, "kokorod-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.node.port.onmessage = (event) => this.onProgress(event.data);
    this.node.connect(this.ctx.destination);
  },

  push(utterance, offset, samples) {
    // Transfer, not copy: the buffer was made for this frame alone.
    this.node.port.postMessage({ type: "push", utterance, offset, samples }, [samples.buffer]);
  },

  end(utterance) {
    if (this.node) this.node.port.postMessage({ type: "end", utterance });
  },

  flush() {
    if (this.node) this.node.port.postMessage({ type: "flush" });
  },

  // Context time of the sample now leaving the speakers. getOutputTimestamp
  // accounts for the device and OS buffering that currentTime does not.
  heardTime() {
    const ts = this.ctx.getOutputTimestamp ? this.ctx.getOutputTimestamp() : null;
    if (ts && ts.contextTime > 0) return ts.contextTime;
    return this.ctx.currentTime - (this.ctx.baseLatency || 0) - (this.ctx.outputLatency || 0);
  },
};

// PCM frames. pcm_s16le is the session default; pcm_f32le is accepted too in case a
// future config asks for it. Opus goes through OpusStream; mulaw, alaw and mp3
// are never requested by this page.
function toFloat32(format, buf, offset) {
  if (format === "pcm_s16le") {
    // 4 + H is a multiple of 4 by the protocol, so this view is aligned.
    const pcm = new Int16Array(buf, offset, (buf.byteLength - offset) >> 1);
    const out = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
    return out;
  }
  if (format === "pcm_f32le") return new Float32Array(buf.slice(offset));
  return null;
}

// ---------------------------------------------------------------------------
// Opus: Ogg pages in, 24 kHz float32 out (docs/protocol.md, *Compressed audio*)

const OPUS_CONFIG = { codec: "opus", sampleRate: MODEL_RATE, numberOfChannels: 1 };
const OPUS_RATE = 48000; // Ogg granules and Opus packet durations are counted at 48 kHz

// Which format to ask for, decided once per page: {format, reason}.
const formatChoice = (async () => {
  const forced = new URL(location.href).searchParams.get("format");
  if (forced === "pcm_s16le" || forced === "pcm") return { format: "pcm_s16le", reason: "asked for by ?format=" };
  if (typeof AudioDecoder === "undefined" || typeof EncodedAudioChunk === "undefined") {
    return {
      format: "pcm_s16le",
      reason: isSecureContext ? "this browser has no WebCodecs AudioDecoder" : "WebCodecs needs a secure context (https or localhost)",
    };
  }
  try {
    const support = await AudioDecoder.isConfigSupported(OPUS_CONFIG);
    if (!support.supported) return { format: "pcm_s16le", reason: "WebCodecs here cannot decode Opus" };
  } catch (err) {
    return { format: "pcm_s16le", reason: `the Opus check failed: ${err}` };
  }
  return { format: "opus", reason: forced === "opus" ? "asked for by ?format=" : "WebCodecs decodes Opus here" };
})();
let opusBroken = null; // set (a reason) if decoding ever failed: later utterances use PCM

// Ogg pages -> packets (RFC 3533). Bytes may end mid-page; a packet may span pages.
class OggDemuxer {
  constructor() {
    this.buf = new Uint8Array(0);
    this.partial = []; // segments of a packet continued on the next page
  }

  push(bytes) {
    if (this.buf.length) {
      const joined = new Uint8Array(this.buf.length + bytes.length);
      joined.set(this.buf);
      joined.set(bytes, this.buf.length);
      bytes = joined;
    }
    const packets = [];
    let pos = 0;
    while (bytes.length - pos >= 27) {
      if (bytes[pos] !== 0x4f || bytes[pos + 1] !== 0x67 || bytes[pos + 2] !== 0x67 || bytes[pos + 3] !== 0x53) {
        throw new Error("lost Ogg page sync");
      }
      const segments = bytes[pos + 26];
      if (bytes.length - pos < 27 + segments) break;
      const lacing = bytes.subarray(pos + 27, pos + 27 + segments);
      const bodyLength = lacing.reduce((a, b) => a + b, 0);
      if (bytes.length - pos < 27 + segments + bodyLength) break;
      let at = pos + 27 + segments;
      for (const size of lacing) {
        this.partial.push(bytes.subarray(at, at + size));
        at += size;
        if (size < 255) { // a lacing value below 255 ends a packet
          const length = this.partial.reduce((a, b) => a + b.length, 0);
          const packet = new Uint8Array(length);
          let o = 0;
          for (const piece of this.partial) { packet.set(piece, o); o += piece.length; }
          packets.push(packet);
          this.partial = [];
        }
      }
      // Keep copies of a spanning packet's pieces: `bytes` is about to go.
      this.partial = this.partial.map((piece) => piece.slice());
      pos = at;
    }
    this.buf = bytes.slice(pos);
    return packets;
  }
}

// Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716, 3.1).
function opusPacketSamples(packet) {
  const toc = packet[0];
  const config = toc >> 3;
  const frame = config < 12 ? [480, 960, 1920, 2880][config & 3]
    : config < 16 ? [480, 960][config & 1]
    : [120, 240, 480, 960][config & 3];
  const code = toc & 3;
  const count = code === 0 ? 1 : code === 3 ? packet[1] & 0x3f : 2;
  return frame * count;
}

// 48 kHz -> 24 kHz: a linear-phase halfband lowpass (65-tap Blackman-windowed
// sinc, cutoff 12 kHz), centred, so output sample m is input sample 2m and no
// sample moves in time. Opus coded from 24 kHz audio has nothing above 12 kHz.
const HALFBAND_D = 32;
const HALFBAND = (() => {
  const n = 2 * HALFBAND_D + 1;
  const h = new Float32Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    const x = (k - HALFBAND_D) / 2;
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * k) / (n - 1)) + 0.08 * Math.cos((4 * Math.PI * k) / (n - 1));
    h[k] = sinc * w;
    sum += h[k];
  }
  for (let k = 0; k < n; k++) h[k] /= sum;
  return h;
})();

class Decimator2 {
  constructor() {
    // Input history from absolute index `base`; starts with D zeros (before sample 0).
    this.x = new Float32Array(HALFBAND_D);
    this.base = -HALFBAND_D;
    this.inputs = 0;  // input samples pushed
    this.next = 0;    // next output index
  }

  push(input) {
    const keep = this.x.subarray(Math.max(0, 2 * this.next - HALFBAND_D - this.base));
    const x = new Float32Array(keep.length + input.length);
    x.set(keep);
    x.set(input, keep.length);
    this.base += this.x.length - keep.length;
    this.x = x;
    this.inputs += input.length;
    return this.drain();
  }

  drain() {
    const out = [];
    while (2 * this.next + HALFBAND_D < this.base + this.x.length) {
      const c = 2 * this.next - this.base; // index of the centre tap's input
      let acc = 0;
      for (let k = 0; k < HALFBAND.length; k++) acc += HALFBAND[k] * this.x[c + HALFBAND_D - k];
      out.push(acc);
      this.next++;
    }
    return Float32Array.from(out);
  }
}

// One utterance's Opus stream: push() the frames' bytes, get 24 kHz float32
// through onSamples, in timeline order; end() after `done`; close() on cancel.
class OpusStream {
  constructor(onSamples, onError) {
    this.onSamples = onSamples;
    this.onError = onError;
    this.ogg = new OggDemuxer();
    this.decoder = null;
    this.packets = 0;      // packets seen (the first two are OpusHead and OpusTags)
    this.preSkip = 0;      // from OpusHead, at 48 kHz
    this.toDrop = null;    // decoded samples still to drop (null: not known yet)
    this.firstPacket = 0;  // samples in the first audio packet (48 kHz)
    this.timestamp = 0;    // 48 kHz samples decoded so far
    this.decimator = null;
    this.closed = false;
  }

  push(bytes) {
    if (this.closed) return;
    for (const packet of this.ogg.push(bytes)) this.packet(packet);
  }

  packet(packet) {
    const n = this.packets++;
    if (n === 0) {
      const magic = new TextDecoder().decode(packet.subarray(0, 8));
      if (magic !== "OpusHead") throw new Error("not an Ogg Opus stream");
      this.preSkip = packet[10] | (packet[11] << 8);
      this.decoder = new AudioDecoder({
        output: (data) => this.output(data),
        error: (err) => { if (!this.closed) this.onError(err); },
      });
      // With the OpusHead as description, Chromium drops the pre-skip itself;
      // output() checks whether it did.
      this.decoder.configure({ ...OPUS_CONFIG, description: packet });
      return;
    }
    if (n === 1) return; // OpusTags
    const samples = opusPacketSamples(packet);
    if (n === 2) this.firstPacket = samples;
    this.decoder.decode(new EncodedAudioChunk({
      type: "key",
      timestamp: Math.round((this.timestamp * 1e6) / OPUS_RATE),
      duration: Math.round((samples * 1e6) / OPUS_RATE),
      data: packet,
    }));
    this.timestamp += samples;
  }

  output(data) {
    if (this.closed) { data.close(); return; }
    const rate = data.sampleRate;
    let pcm = new Float32Array(data.numberOfFrames);
    try {
      data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
    } catch {
      data.copyTo(pcm, { planeIndex: 0 }); // mono f32: plane 0 is the samples
    }
    data.close();
    if (this.toDrop === null) {
      // A decoder that applied the pre-skip gives a first output shorter than the first packet.
      const whole = Math.round((this.firstPacket * rate) / OPUS_RATE);
      this.toDrop = pcm.length < whole ? 0 : Math.round((this.preSkip * rate) / OPUS_RATE);
    }
    if (this.toDrop > 0) {
      const drop = Math.min(this.toDrop, pcm.length);
      pcm = pcm.subarray(drop);
      this.toDrop -= drop;
    }
    if (!pcm.length) return;
    if (rate === MODEL_RATE) this.onSamples(pcm);
    else if (rate === 2 * MODEL_RATE) {
      if (!this.decimator) this.decimator = new Decimator2();
      const out = this.decimator.push(pcm);
      if (out.length) this.onSamples(out);
    } else throw new Error(`the Opus decoder gave ${rate} Hz audio`);
  }

  async end() {
    if (this.closed || !this.decoder) return;
    await this.decoder.flush();
    if (this.decimator && !this.closed) {
      const tail = this.decimator.push(new Float32Array(HALFBAND_D + 1));
      if (tail.length) this.onSamples(tail);
    }
  }

  close() {
    this.closed = true;
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
  }
}

// ---------------------------------------------------------------------------
// Utterances and the transcript

const utterances = new Map(); // id -> utterance record; only the current one is kept
let current = null;
let counter = 0;

function newUtterance() {
  // Everything older is dropped from the map, so any late frame or word of it
  // (already in flight when we cancelled) finds no record and is discarded.
  utterances.clear();
  const u = {
    id: `u${++counter}-${Date.now().toString(36)}`,
    words: [],          // {text, start, end, el, gaps: [gap spans that darken with it]}
    next: 0,            // first word not yet fully heard
    pending: null,      // text node with the chunk text that no word has claimed yet
    sampleRate: player.ctx.sampleRate,
    played: 0,
    at: 0,
    totalSamples: null, // from `done`
    cancelled: false,
    finished: false,
    sentAt: performance.now(),
    opus: null,         // OpusStream, for an utterance that comes as Opus
    pushed: 0,          // decoded samples handed to the worklet (Opus)
    bytes: 0,           // audio payload bytes received
    frameSamples: 0,    // samples the audio frames completed (for the PCM comparison)
  };
  utterances.set(u.id, u);
  current = u;
  ui.transcript.replaceChildren();
  test.utterance = u.id;
  test.wordsHighlighted = [];
  test.highlightTimes = [];
  test.playedSamples = 0;
  test.firstAudioMs = null;
  test.audioBytes = 0;
  test.pcmBytes = 0;
  test.decodedSamples = 0;
  if (test.capture) test.capture = [];
  ui.latency.textContent = "…";
  ui.bytes.textContent = "…";
  setState("speaking");
  return u;
}

// A chunk's text goes in as-is (punctuation included), shown as "upcoming";
// its words are then carved out of it as their `word` events arrive.
function addChunk(u, chunk) {
  claimRest(u);
  const last = ui.transcript.lastChild;
  let text = chunk.text;
  if (last && !/\s$/.test(last.textContent) && !/^\s/.test(text)) text = " " + text;
  u.pending = document.createTextNode(text);
  ui.transcript.append(u.pending);
}

function addWord(u, word) {
  const span = document.createElement("span");
  span.className = "word";
  span.textContent = word.text;
  const w = { text: word.text, start: word.start, end: word.end, el: span, gaps: [] };
  const pending = u.pending;
  const at = pending ? pending.data.indexOf(word.text) : -1;
  if (at >= 0) {
    const gap = pending.data.slice(0, at);
    if (gap) addGap(u, gap, pending, w);
    pending.before(span);
    pending.data = pending.data.slice(at + word.text.length);
  } else {
    // The word is not found verbatim in its chunk (should not happen, but
    // never lose a word): put it at the reading position.
    if (ui.transcript.lastChild && !/\s$/.test(ui.transcript.lastChild.textContent)) addGap(u, " ", pending, w);
    if (pending) pending.before(span);
    else ui.transcript.append(span);
  }
  u.words.push(w);
}

// Text between words (spaces, punctuation) darkens with the word before it,
// so "there." turns dark as one piece; text before the first word goes with it.
function addGap(u, text, beforeNode, nextWord) {
  const gap = document.createElement("span");
  gap.className = "gap";
  gap.textContent = text;
  if (beforeNode) beforeNode.before(gap);
  else ui.transcript.append(gap);
  const owner = u.words.length ? u.words[u.words.length - 1] : nextWord;
  if (owner) owner.gaps.push(gap); // else a word-less chunk: darkened by finish()
}

function claimRest(u) {
  if (u.pending && u.pending.data) addGap(u, u.pending.data, u.pending, null);
  if (u.pending) u.pending.remove();
  u.pending = null;
}

function markSpoken(w) {
  w.el.classList.remove("current");
  w.el.removeAttribute("aria-current");
  w.el.classList.add("spoken");
  for (const g of w.gaps) g.classList.add("spoken");
}

function markCurrent(w) {
  w.el.classList.add("current");
  w.el.setAttribute("aria-current", "true");
  for (const g of w.gaps) g.classList.add("spoken");
}

// Sample of utterance `u` leaving the speakers now. The worklet reported that
// sample `played` starts at context time `at`; whatever lies between the
// output device and `at` has been rendered but not heard yet.
function heardSamples(u) {
  const behind = Math.max(0, (u.at - player.heardTime()) * u.sampleRate);
  return Math.max(0, u.played - behind);
}

function followAudioClock(u) {
  if (u.finished || u.cancelled) return;
  const heard = heardSamples(u);
  const t = heard / u.sampleRate;
  // Words whose end has been heard are done (even a word shorter than the
  // report interval, which is then never the current one).
  while (u.next < u.words.length && u.words[u.next].end <= t) markSpoken(u.words[u.next++]);
  const w = u.words[u.next];
  if (w && w.start <= t && !w.el.classList.contains("current")) {
    markCurrent(w);
    test.wordsHighlighted.push(w.text);
    test.highlightTimes.push(player.heardTime());
  }
  if (u.totalSamples !== null && heard >= u.totalSamples) finish(u);
}

// Stop an utterance on this side: nothing more of it is played or decoded.
function abandon(u) {
  u.cancelled = true;
  if (u.opus) u.opus.close();
  u.opus = null;
}

function finish(u) {
  u.finished = true;
  claimRest(u);
  for (const w of u.words) markSpoken(w);
  if (u !== current) return;
  for (const gap of ui.transcript.querySelectorAll(".gap")) gap.classList.add("spoken");
  setState("idle");
}

player.onProgress = (p) => {
  test.outputPeak = p.peak;
  test.underruns = p.underruns;
  test.buffered = p.buffered;
  const u = utterances.get(p.utterance);
  if (p.utterance === test.utterance) test.playedSamples = p.played;
  if (!u) return;
  u.played = p.played;
  u.at = p.at;
  followAudioClock(u);
};

// ---------------------------------------------------------------------------
// Connection

let ws = null;
let retryMs = 500;
let voiceDefault = null;
let sampleRates = [MODEL_RATE];
let serverFormats = ["pcm_s16le"];
let negotiated = null; // {format, sample_rate} last asked of the daemon on this connection

// ws(s)://<this host>/v1/stream. A `?token=` on the page is passed on as a
// subprotocol entry (keeps it out of server access logs); a token with
// characters a subprotocol cannot carry goes in the query string instead.
function streamTarget() {
  const page = new URL(location.href);
  const url = new URL("/v1/stream", page);
  url.protocol = page.protocol === "https:" ? "wss:" : "ws:";
  const protocols = [SUBPROTOCOL];
  const token = page.searchParams.get("token");
  if (token) {
    if (/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(token)) protocols.push(TOKEN_PREFIX + token);
    else url.searchParams.set("token", token);
  }
  return { url: url.href, protocols };
}

function connect() {
  const { url, protocols } = streamTarget();
  setConnection("connecting", "connecting…");
  let opened = false;
  ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    opened = true;
    retryMs = 500;
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") onEvent(JSON.parse(event.data));
    else onAudioFrame(event.data);
  };
  ws.onclose = (event) => {
    // The daemon drops a closed session's utterances; so do we.
    stopDemo();
    if (current && !current.finished) abandon(current);
    player.flush();
    setControls(false);
    setState("disconnected");
    setConnection("disconnected", "disconnected");
    showMessage(
      opened
        ? `Connection closed${event.reason ? `: ${event.reason}` : ""}. Reconnecting…`
        : `Cannot reach kokorod at ${location.host} (is it running? if it needs a token, open this page with ?token=…). Retrying…`,
      true,
    );
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  };
}

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function onEvent(msg) {
  const u = msg.utterance !== undefined ? utterances.get(msg.utterance) : undefined;
  switch (msg.type) {
    case "ready":
      voiceDefault = msg.voice;
      sampleRates = msg.sample_rates || sampleRates;
      serverFormats = msg.formats || ["pcm_s16le"];
      negotiated = null;
      fillVoices(msg.voices || [], msg.voice, msg.languages);
      ui.speed.min = msg.limits?.speed_min ?? 0.5;
      ui.speed.max = msg.limits?.speed_max ?? 2;
      setConnection("connected", `connected (v${msg.version})`);
      setControls(true);
      setState("idle");
      showMessage("");
      break;
    case "chunk":
      if (u && !u.cancelled) addChunk(u, msg);
      break;
    case "word":
      if (u && !u.cancelled) addWord(u, msg);
      break;
    case "done":
      if (u && !u.cancelled) {
        u.totalSamples = msg.samples;
        const ended = () => {
          if (u.cancelled) return;
          player.end(u.id);
          followAudioClock(u); // an utterance with no audio at all ends here
        };
        // Opus: the decoder still holds the last packets; play them first.
        if (u.opus) u.opus.end().then(ended, (err) => opusFailed(u, err));
        else ended();
      }
      break;
    case "cancelled":
      // Our own cancels (Stop, barge-in) were handled when we sent them;
      // this is the daemon stopping one on its own (overload, shutdown…).
      if (u && !u.cancelled && !u.finished) {
        abandon(u);
        player.flush();
        setState("idle");
        showMessage(`The daemon stopped this utterance (${msg.reason}).`, true);
      }
      break;
    case "error":
      showMessage(`Error ${msg.code}: ${msg.message}`, true);
      // These two leave the utterance going; any other error ends it.
      if (u && !u.finished && msg.code !== "text_too_long" && msg.code !== "rate_limited") {
        stopDemo();
        abandon(u);
        player.flush();
        setState("idle");
      }
      break;
    default:
      break; // `configured` and future event types: nothing to do
  }
}

const utf8 = new TextDecoder();

function onAudioFrame(buf) {
  const headerLength = new DataView(buf).getUint32(0, true);
  const head = JSON.parse(utf8.decode(new Uint8Array(buf, 4, headerLength)));
  const u = utterances.get(head.utterance);
  if (!u || u.cancelled) return; // in flight when we cancelled it: never play it
  if (test.firstAudioMs === null && u === current) {
    test.firstAudioMs = Math.round(performance.now() - u.sentAt);
    ui.latency.textContent = `${test.firstAudioMs} ms`;
  }
  u.sampleRate = head.sample_rate;
  countBytes(u, buf.byteLength - 4 - headerLength, head.samples);
  if (head.format === "opus") {
    if (!u.opus) {
      u.opus = new OpusStream((samples) => playDecoded(u, samples), (err) => opusFailed(u, err));
    }
    try {
      u.opus.push(new Uint8Array(buf, 4 + headerLength));
    } catch (err) {
      opusFailed(u, err);
    }
    return;
  }
  const samples = toFloat32(head.format, buf, 4 + headerLength);
  if (!samples) {
    showMessage(`Unsupported audio format ${head.format}`, true);
    return;
  }
  if (u === current) {
    test.decodedSamples += samples.length; // (before the push detaches it)
    if (test.capture) test.capture.push(Array.from(samples));
  }
  player.push(u.id, head.offset, samples);
}

// Decoded Opus, in timeline order, never past the samples the frames so far
// complete (their `samples` add up to `done.samples`): the last packet is
// decoded whole, past the stream's end granule, and that tail is cut here.
function playDecoded(u, samples) {
  if (u.cancelled) return;
  samples = samples.subarray(0, Math.max(0, u.frameSamples - u.pushed));
  if (!samples.length) return;
  const offset = u.pushed;
  u.pushed += samples.length; // before the push: transferring detaches the buffer
  player.push(u.id, offset, samples.slice()); // its own buffer, transferred to the worklet
  if (u === current) {
    test.decodedSamples = u.pushed;
    if (test.capture) test.capture.push(Array.from(samples));
  }
}

function opusFailed(u, err) {
  if (u.cancelled) return;
  opusBroken = `Opus decoding failed (${err && err.message ? err.message : err})`;
  showMessage(`${opusBroken}; the next utterance uses PCM.`, true);
  abandon(u);
  player.flush();
  setState("idle");
}

function countBytes(u, bytes, samples) {
  u.bytes += bytes;
  u.frameSamples += samples;
  if (u !== current) return;
  test.audioBytes = u.bytes;
  test.pcmBytes = 2 * u.frameSamples;
  const kb = (n) => (n >= 10240 ? `${(n / 1024).toFixed(0)} kB` : `${(n / 1024).toFixed(1)} kB`);
  const share = test.pcmBytes ? ` (${((100 * u.bytes) / test.pcmBytes).toFixed(0)}% of 16-bit PCM)` : "";
  ui.bytes.textContent = kb(u.bytes) + (negotiated && negotiated.format !== "pcm_s16le" ? share : "");
}

// Format and rate for the next utterance, asked once per connection (config
// only affects utterances created afterwards). Opus needs the AudioContext at
// 24 kHz (the decoder's 48 kHz is halved here); otherwise PCM, at the
// context's rate if the browser would not give us 24 kHz (the daemon resamples).
async function negotiateAudio() {
  const rate = player.ctx.sampleRate;
  let choice = await formatChoice;
  if (choice.format === "opus") {
    if (opusBroken) choice = { format: "pcm_s16le", reason: opusBroken };
    else if (!serverFormats.includes("opus")) choice = { format: "pcm_s16le", reason: "the daemon does not offer opus" };
    else if (rate !== MODEL_RATE) choice = { format: "pcm_s16le", reason: `the AudioContext runs at ${rate} Hz, not 24000` };
  }
  const want = { format: choice.format, sample_rate: choice.format === "opus" ? MODEL_RATE : rate };
  if (!sampleRates.includes(want.sample_rate)) {
    showMessage(`This browser plays audio at ${rate} Hz, which kokorod cannot produce.`, true);
    return false;
  }
  test.format = want.format;
  test.formatReason = choice.reason;
  ui.format.textContent = want.format === "opus" ? "Opus (WebCodecs)" : want.format === "pcm_s16le" ? "PCM 16-bit" : want.format;
  ui.format.title = `${want.format} at ${want.sample_rate} Hz: ${choice.reason}`;
  if (negotiated && negotiated.format === want.format && negotiated.sample_rate === want.sample_rate) return true;
  // The session starts at pcm_s16le / 24000: nothing to ask in that case.
  if (negotiated || want.format !== "pcm_s16le" || want.sample_rate !== MODEL_RATE) {
    send({ type: "config", format: want.format, sample_rate: want.sample_rate });
  }
  negotiated = want;
  return true;
}

// ---------------------------------------------------------------------------
// Controls

// Fallback for a daemon whose `ready` has no `languages` map (protocol v1 before it).
const LANGUAGES = {
  a: "American English", b: "British English", e: "Spanish", f: "French", h: "Hindi",
  i: "Italian", j: "Japanese", p: "Brazilian Portuguese", z: "Mandarin Chinese",
};
const GENDERS = { f: "female", m: "male" };

// One <optgroup> per language, in the daemon's order; a language whose G2P is
// not installed there keeps its voices visible but disabled, with the reason.
function voiceGroups(voices, languages) {
  const groups = [];
  const seen = new Set();
  for (const [code, info] of Object.entries(languages || {})) {
    const names = (info.voices || []).filter((v) => voices.includes(v));
    if (!names.length) continue;
    names.forEach((v) => seen.add(v));
    const label = info.available === false ? `${info.name} (unavailable)` : info.name;
    groups.push({ code, label, names, disabled: info.available === false, title: info.fix || "" });
  }
  const rest = voices.filter((v) => !seen.has(v));
  const byLetter = new Map();
  for (const name of rest) {
    const label = LANGUAGES[name[0]] || "Other";
    if (!byLetter.has(label)) byLetter.set(label, []);
    byLetter.get(label).push(name);
  }
  for (const [label, names] of byLetter) groups.push({ code: "", label, names, disabled: false, title: "" });
  return groups;
}

function fillVoices(voices, selected, languages) {
  ui.voice.replaceChildren();
  if (selected && !voices.includes(selected)) {
    // The daemon's default may be a blend, which is not in the list.
    ui.voice.append(new Option(`${selected} (default)`, selected));
  }
  for (const g of voiceGroups(voices, languages)) {
    const group = document.createElement("optgroup");
    group.label = g.label;
    group.dataset.lang = g.code;
    if (g.disabled) { group.disabled = true; group.title = g.title; }
    for (const name of g.names) {
      const m = /^([a-z])([fm])_(.+)$/.exec(name);
      group.append(new Option(m ? `${m[3]} · ${GENDERS[m[2]]} (${name})` : name, name));
    }
    ui.voice.append(group);
  }
  ui.voice.value = selected;
}

function setControls(enabled) {
  for (const control of [ui.voice, ui.speak, ui.demo, ui.stop]) control.disabled = !enabled;
}

function setState(state) {
  test.state = state;
  ui.state.textContent = state === "connecting" || state === "disconnected" ? "—" : state;
}

function setConnection(state, text) {
  ui.conn.dataset.state = state;
  ui.conn.textContent = text;
}

function showMessage(text, isError = false) {
  ui.message.textContent = text;
  ui.message.classList.toggle("error", isError);
}

function speechOptions() {
  return { voice: ui.voice.value || voiceDefault, speed: Number(ui.speed.value), mode: "interrupt" };
}

// Everything needed before sending the first fragment of a new utterance.
async function beginUtterance() {
  await player.start();
  if (!(await negotiateAudio())) return null;
  // Barge-in: the daemon cancels the old utterance when the new speak
  // arrives; its audio already here is dropped right now.
  stopDemo();
  if (current && !current.finished) abandon(current);
  player.flush();
  showMessage("");
  return newUtterance();
}

async function speakText() {
  const text = ui.text.value;
  if (!text.trim()) {
    showMessage("Type something to say first.", true);
    ui.text.focus();
    return;
  }
  const u = await beginUtterance();
  if (u) send({ type: "speak", utterance: u.id, text, final: true, ...speechOptions() });
}

// The LLM demo: fragments as a model would emit them (words, sometimes split
// inside a word), at ~20 words/s, all into one utterance, `final` on the last.
let demoTimer = null;

function demoFragments(text) {
  const ticks = [];
  for (const word of text.match(/\S+\s*/g)) {
    const cut = word.trimEnd().length > 6 ? Math.ceil(word.length / 2) : word.length;
    ticks.push(cut < word.length ? [word.slice(0, cut), word.slice(cut)] : [word]);
  }
  return ticks;
}

async function startDemo() {
  const u = await beginUtterance();
  if (!u) return;
  const ticks = demoFragments(DEMO_TEXT);
  const options = speechOptions();
  let first = true;
  const sendTick = () => {
    const pieces = ticks.shift();
    if (!pieces) return stopDemo();
    pieces.forEach((text, i) => {
      const final = ticks.length === 0 && i === pieces.length - 1;
      // voice/speed only matter on the fragment that creates the utterance.
      send({ type: "speak", utterance: u.id, text, final, ...(first ? options : {}) });
      first = false;
    });
    if (ticks.length === 0) stopDemo();
  };
  sendTick();
  demoTimer = setInterval(sendTick, 1000 / DEMO_WORDS_PER_S);
}

function stopDemo() {
  if (demoTimer !== null) clearInterval(demoTimer);
  demoTimer = null;
}

function stopAll() {
  stopDemo();
  send({ type: "cancel", all: true });
  if (current && !current.finished) abandon(current);
  player.flush(); // don't wait for the daemon: silence now
  if (current) for (const w of current.words) w.el.classList.remove("current");
  if (test.state === "speaking") setState("idle");
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  speakText();
});
ui.demo.addEventListener("click", startDemo);
ui.stop.addEventListener("click", stopAll);
ui.speed.addEventListener("input", () => {
  ui.speedValue.textContent = `${Number(ui.speed.value).toFixed(2)}×`;
});
ui.text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && test.state === "speaking") stopAll();
});

connect();
