#!/usr/bin/env python3
"""What short first chunks cost in prosody, with the pace held fixed.

The daemon sizes chunks from the pace it measures, and that moves between runs
on a shared machine, so two daemon runs of the same paragraph are cut
differently and their DNSMOS differs by 0.1 for that reason alone
(bench/first_audio_langs.py). Here the pace is a fixed number: each paragraph
is cut by the same segmenter the daemon uses, with no time budget ("words",
the old policy) and with the default budget at each ``--paces`` value, then
spoken in-process by the same pipeline as ``kokorod say`` (one engine, the
default one, so only the cuts differ). The output is deterministic on one CPU,
so a run is repeatable here; a paragraph whose cuts come out the same in two
variants is spoken once.

The characters per second and per-run overhead the budget needs are learnt
from the "words" renders first, as the daemon learns them (kokorod.daemon.pacing).

Judged by DNSMOS (OVRL, SIG) and Whisper's error (tiny.en for English,
base for the others), per language, against "words".

    PYTHONPATH=. .venv/bin/python bench/chunking_quality.py [--langs en,es,fr,it] [--paces 0.3,0.6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from machine import cpu_info, describe  # noqa: E402

from kokorod.config import ServerConfig  # noqa: E402
from kokorod.daemon.admission import PACE_MARGIN  # noqa: E402
from kokorod.daemon.pacing import SpeechRates  # noqa: E402
from kokorod.speech.local import LocalSpeech  # noqa: E402
from kokorod.speech.plan import makes_sound  # noqa: E402
from kokorod.text import cut_policy, languages  # noqa: E402
from kokorod.text.per_language import segmenter_for  # noqa: E402
from kokorod.text.segmenter import Segment  # noqa: E402

SAMPLE_RATE = 24000

# Everyday paragraphs of a few sentences: a short greeting or statement first
# (where the budget cuts hardest), then clauses of varied length.
PARAGRAPHS: dict[str, tuple[str, list[str]]] = {
    "en": ("af_heart", [
        "Good morning, everyone. Today we will review the project plan, and then we will talk about the "
        "delivery dates. If you have questions, send me an email this afternoon.",
        "The library opens at nine in the morning on weekdays. On weekends it opens an hour later, and it "
        "closes early on public holidays.",
        "Sure. The train to Boston leaves in twenty minutes from platform four. Please keep your ticket ready, "
        "because the conductor checks it on board.",
        "Thanks for waiting. Your order has shipped, and it should arrive on Thursday. You can follow the "
        "parcel with the link in your email.",
        "Welcome back. The weather tonight will be cold and clear, with a light wind from the north. "
        "Tomorrow brings sunshine in the morning and rain after lunch.",
        "To reset your password, open the settings page and choose security. Then follow the steps on the "
        "screen, and sign in again when you are done.",
    ]),
    "es": ("ef_dora", [
        "Buenos días a todos. Hoy vamos a revisar el plan del proyecto, y después hablaremos de las fechas "
        "de entrega. Si tienen preguntas, pueden escribirme un correo esta tarde.",
        "La biblioteca abre a las nueve de la mañana. Los estudiantes pueden reservar una sala, pero deben "
        "llegar a tiempo. El préstamo de libros dura dos semanas.",
        "Gracias por esperar. Su pedido ya salió del almacén, y debería llegar el jueves. Puede seguir el "
        "paquete con el enlace del correo.",
        "El tren a Sevilla sale en veinte minutos desde el andén cuatro. Tengan el billete a mano, porque el "
        "revisor lo pide a bordo.",
        "Bienvenidos de nuevo. Esta noche hará frío, con un viento suave del norte. Mañana tendremos sol por "
        "la mañana y lluvia después de comer.",
        "Para cambiar la contraseña, abra la configuración y elija seguridad. Después siga los pasos de la "
        "pantalla, y vuelva a entrar al terminar.",
    ]),
    "fr": ("ff_siwis", [
        "Bonjour à tous. Nous allons d'abord parler du budget, puis nous regarderons le calendrier du "
        "projet. Merci de garder vos questions pour la fin de la réunion.",
        "Le train pour Lyon partira avec un peu de retard. Les voyageurs sont priés de rester sur le quai, "
        "et de surveiller leurs bagages. Nous vous remercions de votre patience.",
        "Merci de votre attente. Votre commande est partie ce matin, et elle arrivera jeudi. Vous pouvez "
        "suivre le colis avec le lien de votre courriel.",
        "La bibliothèque ouvre à neuf heures du matin. Les étudiants peuvent réserver une salle, mais ils "
        "doivent arriver à l'heure. Le prêt des livres dure deux semaines.",
        "Bon retour parmi nous. Ce soir, il fera froid avec un vent léger du nord. Demain, il y aura du "
        "soleil le matin et de la pluie l'après-midi.",
        "Pour changer votre mot de passe, ouvrez les réglages et choisissez sécurité. Suivez ensuite les "
        "étapes à l'écran, puis reconnectez-vous.",
    ]),
    "it": ("if_sara", [
        "Buongiorno a tutti. Oggi parliamo del nuovo progetto, e poi vedremo insieme le prossime scadenze. "
        "Se avete domande, scrivetemi pure nel pomeriggio.",
        "Il museo apre alle dieci del mattino. I visitatori possono comprare il biglietto online, ma devono "
        "arrivare in orario. La visita guidata dura un'ora.",
        "Grazie per l'attesa. Il suo ordine è partito stamattina, e arriverà giovedì. Può seguire il pacco "
        "con il link nella sua email.",
        "Il treno per Milano parte tra venti minuti dal binario quattro. Tenete pronto il biglietto, perché "
        "il controllore lo chiede a bordo.",
        "Bentornati. Stasera farà freddo, con un vento leggero da nord. Domani avremo sole al mattino e "
        "pioggia nel pomeriggio.",
        "Per cambiare la password, aprite le impostazioni e scegliete sicurezza. Poi seguite i passaggi sullo "
        "schermo, e accedete di nuovo alla fine.",
    ]),
}


def cut(text: str, lang: Any, budget: Any, *, stream: bool, slack: float | None = None) -> list[Segment]:
    """``text`` cut as the daemon would, with ``budget``; ``slack``: the first
    chunk's FIRST_SLACK for this cut (1: none, the rule before it)."""
    saved = cut_policy.FIRST_SLACK
    if slack is not None:
        cut_policy.FIRST_SLACK = slack
    try:
        return _cut(text, lang, budget, stream=stream)
    finally:
        cut_policy.FIRST_SLACK = saved


def _cut(text: str, lang: Any, budget: Any, *, stream: bool) -> list[Segment]:
    seg = segmenter_for(lang)
    seg.budget = budget
    if not stream:
        return seg.feed(text) + seg.flush()
    out: list[Segment] = []
    words = text.split(" ")
    for i, w in enumerate(words):
        out += seg.feed(w + (" " if i < len(words) - 1 else ""))
    return out + seg.flush()


def speak(synth: Any, segments: list[Segment], voice: str, lang: Any,
          rates: tuple[SpeechRates, SpeechRates] | None) -> np.ndarray:
    """``segments`` spoken; ``rates``: (now, old) learnt from these runs as the
    daemon learns them, "old" counting every run's whole timeline as decoded
    (before kokorod.speech.render.decoded_span)."""
    from kokorod.speech import render

    speech = LocalSpeech(synth, voice=voice, speed=1.0, lang=lang)
    if rates is not None:
        timeline: list[int] = []
        real = render.decoded_span

        def spy(audio: np.ndarray) -> int:
            timeline.append(int(audio.shape[0]))
            return real(audio)

        render.decoded_span = spy  # type: ignore[assignment]
        try:
            for s in segments:
                if not makes_sound(s):
                    continue
                r = render.render_segment(synth, s, voice=voice, speed=1.0, lang=lang, last=False, token=speech.token)
                for learnt, decoded in zip(rates, (r.decoded_samples, timeline[-1])):
                    learnt.observe(lang.code, segmenter_for(lang).profile.unit, spoken_chars=len(s.spoken),
                                   speech_samples=r.speech_samples, decoded_samples=decoded,
                                   sample_rate=SAMPLE_RATE, speed=1.0)
        finally:
            render.decoded_span = real  # type: ignore[assignment]
    speech.speak_all(segments)
    return speech.audio


def judge(audio: np.ndarray, text: str, lang: str) -> dict[str, Any]:
    from support.asr import dnsmos, error_rate, transcribe, transcribe_lang  # type: ignore[import-not-found]

    heard = (transcribe(audio, SAMPLE_RATE) if lang == "en" else transcribe_lang(audio, SAMPLE_RATE, lang))[0]
    scores = dnsmos(audio)
    return {"err": round(error_rate(text, heard, lang), 3), "ovrl": round(scores["ovrl"], 3),
            "sig": round(scores["sig"], 3), "heard": heard}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--langs", default="en,es,fr,it")
    ap.add_argument("--paces", default="0.3,0.6",
                    help="fixed planning paces (engine s per audio s, PACE_MARGIN included)")
    ap.add_argument("--first-audio-ms", type=float, default=None, help="the daemon's default when not given")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON lines here")
    args = ap.parse_args()
    if args.first_audio_ms is None:
        args.first_audio_ms = ServerConfig().first_audio_ms
    print(describe(cpu_info()), flush=True)
    from kokorod.speech.build import EngineOptions, build_synthesizer

    synth = build_synthesizer(EngineOptions(engine="onnx"))
    paces = [float(p) for p in args.paces.split(",")]
    rows: list[dict[str, Any]] = []
    for code in args.langs.split(","):
        voice, texts = PARAGRAPHS[code]
        lang = languages.resolve(code)
        rates, rates_old = SpeechRates(), SpeechRates()
        spoken: dict[tuple[str, ...], dict[str, Any]] = {}
        plans: list[tuple[int, str, str, list[Segment]]] = []
        for i, text in enumerate(texts):
            plans.append((i, "words", "whole", cut(text, lang, None, stream=False)))
        # The words renders first: the rates the budgets below are planned with.
        for i, variant, mode, segs in plans:
            key = tuple(s.text for s in segs)
            spoken[key] = judge(speak(synth, segs, voice, lang, (rates, rates_old)), texts[i], code)
        unit = segmenter_for(lang).profile.unit
        first_s = args.first_audio_ms / 1000
        for pace in paces:
            # "old": the first chunk's budget at the margined pace, no slack,
            # the whole timeline counted as decoded (b53089b); the other: as
            # the daemon plans now.
            budgets = {f"pace {pace} old": (rates_old.budget(lang.code, unit, speed=1.0, pace=pace,
                                                             first_audio_s=first_s), 1.0),
                       f"pace {pace}": (rates.budget(lang.code, unit, speed=1.0, pace=pace, first_audio_s=first_s,
                                                     first_pace=pace / PACE_MARGIN), None)}
            for name, (budget, slack) in budgets.items():
                for i, text in enumerate(texts):
                    for mode in ("whole", "stream"):
                        plans.append((i, name, mode, cut(text, lang, budget, stream=mode == "stream", slack=slack)))
        for i, variant, mode, segs in plans:
            key = tuple(s.text for s in segs)
            if key not in spoken:
                spoken[key] = judge(speak(synth, segs, voice, lang, None), texts[i], code)
            row = {"lang": code, "paragraph": i, "variant": variant, "mode": mode, "chunks": list(key),
                   **spoken[key]}
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
        print(f"# {code}: {rates.chars_per_s(lang.code, unit):.1f} chars/s, overhead "
              f"{rates.overhead_s(lang.code, unit):.3f} s/run (old: {rates_old.overhead_s(lang.code, unit):.3f})",
              flush=True)
    summary: dict[str, Any] = {}
    for code in args.langs.split(","):
        base = {r["paragraph"]: r for r in rows if r["lang"] == code and r["variant"] == "words"}
        for variant in sorted({r["variant"] for r in rows if r["lang"] == code and r["variant"] != "words"}):
            for mode in ("whole", "stream"):
                rs = [r for r in rows if r["lang"] == code and r["variant"] == variant and r["mode"] == mode]
                d_ovrl = [r["ovrl"] - base[r["paragraph"]]["ovrl"] for r in rs]
                d_sig = [r["sig"] - base[r["paragraph"]]["sig"] for r in rs]
                summary[f"{code} {variant} {mode}"] = {
                    "d_ovrl_mean": round(statistics.mean(d_ovrl), 3), "d_ovrl_worst": round(min(d_ovrl), 3),
                    "d_sig_mean": round(statistics.mean(d_sig), 3),
                    "err": [round(statistics.mean(base[r["paragraph"]]["err"] for r in rs), 3),
                            round(statistics.mean(r["err"] for r in rs), 3)],
                    "first_chunks": [r["chunks"][0] for r in rs]}
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": cpu_info(),
           "first_audio_ms": args.first_audio_ms, "summary": summary}
    print(json.dumps(out, ensure_ascii=False, indent=1), flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
                            + json.dumps(out, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
