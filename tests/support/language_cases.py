"""One sentence per Kokoro language with what a listener should hear, and how
far a recogniser may be off (the language tests and the language-detection
tests speak the same cases)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    lang: str
    voice: str
    text: str
    reference: str  # what a listener should hear: numbers spelled in the language
    max_error: float  # WER, or CER for zh/ja (measured figures: below)


# The audio differs between CPUs (onnxruntime's int8 kernels), so a case must be
# heard right with margin on any of them. Measured in-process (kokorod's
# speak_local, the daemon's segmentation) on an AMD EPYC with AVX-512 VNNI:
# every case below scored 0.000 with both graphs (int8, and conv-dequantised,
# whose audio differs in length and detail; 1 or 2 threads and optimisation
# level all or basic gave bit-identical audio) x 3 forms (as synthesised, white
# noise 35 dB under the speech, shifted by 5 ms; the perturbed forms reproduce
# the Xeon's mishearing of the old French sentence word for word). The limits
# allow a CPU that hears worse some slips (es 3 of 15 words, fr and pt-br 2 of
# 12, it and en-gb 1 of 9; zh, ja a quarter or more of the characters) and stay
# well below the same text read by the wrong G2P (English; Spanish for en-gb):
# es >= 0.47, fr >= 0.42, it >= 0.33, pt-br >= 0.33, en-gb >= 0.67.
CASES = [
    Case("es", "ef_dora", "¿Dónde está la estación de tren? Necesito llegar antes de las 3 de la tarde.",
         "Dónde está la estación de tren? Necesito llegar antes de las tres de la tarde.", 0.20),
    # Not "Le musée ouvre à 10 heures, et l'entrée coûte 12 euros.": "ouvre à" and
    # "ouvra" sound alike, and so do "douze euros" and "douze heures" (the h is
    # silent), so the judge's guess flips with the CPU's int8 kernels (an Intel
    # Xeon heard "ouvra 10h … 12h", error 0.308; here 0.154, and 0.231 with
    # the audio perturbed). This sentence was heard exactly (0.000) in every
    # variant, and the English G2P reading it scores 0.42-0.50.
    Case("fr", "ff_siwis", "Bonjour ! Nous avons acheté 12 croissants et 3 baguettes à la boulangerie.",
         "Bonjour ! Nous avons acheté douze croissants et trois baguettes à la boulangerie.", 0.20),
    Case("it", "if_sara", "Buongiorno, vorrei prenotare un tavolo per 4 persone stasera.",
         "Buongiorno, vorrei prenotare un tavolo per quattro persone stasera.", 0.20),
    Case("pt-br", "pf_dora", "Olá, tudo bem? Hoje o tempo está ótimo para caminhar no parque.",
         "Olá, tudo bem? Hoje o tempo está ótimo para caminhar no parque.", 0.17),  # 2 of 12 words; wrong G2P: 4
    Case("zh", "zf_xiaobei", "你好，今天天气很好。我们下午去公园散步吧。",
         "你好，今天天气很好。我们下午去公园散步吧。", 0.25),
    Case("ja", "jf_alpha", "今日はいい天気ですね。明日の会議は午後からです。",
         "今日はいい天気ですね。明日の会議は午後からです。", 0.30),
    Case("en-gb", "bf_emma", "The train to London leaves at half past nine.",
         "The train to London leaves at half past nine.", 0.12),  # 0.10 allowed no slip at all
]
