// kokorod browser client: plain ES module, no build step, no dependencies.
//
// Data flow:
//   WebSocket (subprotocol kokorod.v1.json)
//     text frames   -> JSON events (ready, chunk, word, done, cancelled, error)
//     binary frames -> [u32 header length][JSON header][PCM]  -> float32
//   float32 frames -> AudioWorklet ring buffer (player-worklet.js) -> speakers
//   worklet        -> {utterance, played, at} about every 20 ms -> word highlight
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
  message: $("message"),
};

// ---------------------------------------------------------------------------
// Hooks for the browser test (tests/e2e/test_browser.py). Read-only by intent.

const test = {
  state: "connecting",   // connecting | idle | speaking | disconnected
  utterance: null,       // id of the utterance shown in the transcript
  wordsHighlighted: [],  // texts of the current utterance's words, in highlight order
  playedSamples: 0,      // worklet-reported position of the utterance last played
  outputPeak: 0,         // max |sample| the worklet wrote to its output, ever
  underruns: 0,          // gaps: the ring buffer ran dry mid-utterance
  buffered: 0,           // samples queued in the worklet
  firstAudioMs: null,
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
      // daemon resample (see negotiateRate).
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

// pcm_s16le is the session default; pcm_f32le is accepted too in case a
// future config asks for it. Other formats are not requested by this page.
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
  };
  utterances.set(u.id, u);
  current = u;
  ui.transcript.replaceChildren();
  test.utterance = u.id;
  test.wordsHighlighted = [];
  test.playedSamples = 0;
  test.firstAudioMs = null;
  ui.latency.textContent = "…";
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
  }
  if (u.totalSamples !== null && heard >= u.totalSamples) finish(u);
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
let negotiatedRate = null;

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
    if (current && !current.finished) current.cancelled = true;
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
      negotiatedRate = null;
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
        player.end(u.id);
        followAudioClock(u); // an utterance with no audio at all ends here
      }
      break;
    case "cancelled":
      // Our own cancels (Stop, barge-in) were handled when we sent them;
      // this is the daemon stopping one on its own (overload, shutdown…).
      if (u && !u.cancelled && !u.finished) {
        u.cancelled = true;
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
        u.cancelled = true;
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
  const samples = toFloat32(head.format, buf, 4 + headerLength);
  if (!samples) {
    showMessage(`Unsupported audio format ${head.format}`, true);
    return;
  }
  if (test.firstAudioMs === null && u === current) {
    test.firstAudioMs = Math.round(performance.now() - u.sentAt);
    ui.latency.textContent = `${test.firstAudioMs} ms`;
  }
  u.sampleRate = head.sample_rate;
  player.push(u.id, head.offset, samples);
}

// If the browser would not give us a 24 kHz context, ask the daemon for the
// context's rate (it resamples seamlessly). Done once per connection, before
// the first utterance, since config only affects utterances created later.
function negotiateRate() {
  const rate = player.ctx.sampleRate;
  if (rate === MODEL_RATE || negotiatedRate === rate) return true;
  if (!sampleRates.includes(rate)) {
    showMessage(`This browser plays audio at ${rate} Hz, which kokorod cannot produce.`, true);
    return false;
  }
  send({ type: "config", sample_rate: rate });
  negotiatedRate = rate;
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
  if (!negotiateRate()) return null;
  // Barge-in: the daemon cancels the old utterance when the new speak
  // arrives; its audio already here is dropped right now.
  stopDemo();
  if (current && !current.finished) current.cancelled = true;
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
  if (current && !current.finished) current.cancelled = true;
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
