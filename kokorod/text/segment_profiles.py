"""What the segmenter needs to know about a language: one ``SegmentProfile`` each.

The segmenter (``kokorod.text.segmenter``) is language-agnostic; its policy is
parameterised by a profile: how the first chunk is counted, the chunk sizes,
and the marks that differ by script.  Pure data, no imports of the language
layer: callers resolve aliases (``kokorod.text.languages.resolve``) and pass
the canonical code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["words", "chars"]


# Default (English) function words; see SegmentProfile.function_words.
_ENGLISH_FUNCTION_WORDS = frozenset("""a an the this that these those my your his her its our their
    of to in on at by for with from into onto about over under after before than as like
    and or but nor so yet because if when while although though unless until which who whom whose where
    i you he she it we they me him us them is are was were be been am do does did have has had
    will would can could shall should may might must not no""".split())


@dataclass(frozen=True)
class SegmentProfile:
    # How the first chunk is measured: 'words' (space-separated scripts) or
    # 'chars' (zh/ja: one unit per CJK character, one per embedded Latin word
    # or number).  Later chunks are always measured in characters.
    unit: Unit = "words"
    first_min: int = 4  # first chunk: cut at the first sentence/clause end with >= this many units
    first_max: int = 12  # ... or 'forced' at the first cut point with >= this many units
    min_chunk: int = 40  # later chunks: shorter sentences are merged up to this many chars
    max_chunk: int = 300  # size limit of later chunks, reached after the ramp
    ramp: tuple[int, ...] = (100, 200)  # limit of the 1st, 2nd... later chunk
    # Marks added to the segmenter's built-in (English/Latin) sets.
    terminators: str = ""  # end a sentence ("।॥")
    clause_marks: str = ""  # end a clause
    openers: str = ""  # may precede a word ("¿¡", 「): stripped before abbreviation lookup
    closers: str = ""  # may follow a terminator and stay with it ("」』")
    titles: frozenset[str] = frozenset()  # "Sra." never ends a sentence before a capital
    abbrevs: frozenset[str] = frozenset()  # "pág." ends one only before a sentence starter
    glue: str = ""  # typeset after a space but belong to the word before ("Bonjour !", "है ।")
    glue_after: str = ""  # typeset before a space but belong to the word after ("« Bonjour")
    nobreak: str = ""  # whitespace that is never a cut point (no-break spaces: "100 000")
    # Marks after which a cut is possible although no whitespace follows.
    cut_sentence: str = "。！？"
    cut_clause: str = ""
    unspaced: bool = False  # no spaces between words: cuts between CJK characters, ASCII marks after CJK
    mark_runs: bool = False  # "？！", "……。", "।।" are one run, cut after its last mark
    full_stop: str = "."  # appended to a heading/list item so that it sounds finished
    # Words a chunk should not end on and a phrase may start with (articles,
    # prepositions, conjunctions, pronouns): they rank word gaps when a chunk
    # must be cut mid-sentence (kokorod.text.cut_policy).
    function_words: frozenset[str] = _ENGLISH_FUNCTION_WORDS

    def __post_init__(self) -> None:
        if self.unit not in ("words", "chars"):
            raise ValueError(f"unit must be 'words' or 'chars', not {self.unit!r}")
        if not 1 <= self.first_min <= self.first_max:
            raise ValueError("need 1 <= first_min <= first_max")
        if self.max_chunk < 1 or self.min_chunk < 0:
            raise ValueError("need max_chunk >= 1 and min_chunk >= 0")


# English: the segmenter's original policy, value for value.  mark_runs stays
# off so that English output is byte-identical to the pre-profile segmenter.
_DEFAULT = SegmentProfile()

# Latin-script languages keep the English numbers: their words and speaking
# rates are close enough to English that 4/12 words and 40/300 chars mean the
# same latency and segment duration.  They differ only in marks and in the
# abbreviations whose '.' must not end a sentence.
_SPANISH = SegmentProfile(
    function_words=frozenset("""el la los las un una unos unas lo al del de a en con por para sin sobre
        y e o u ni pero que si como cuando porque mi tu su sus nuestro se me te le les nos es son""".split()),
    openers="¿¡",  # "¿Qué? ¡Hola!"; "¡Sr. García!" must still see the abbreviation
    titles=frozenset("sr sra srta sres dr dra d dña dn ud uds lic ing profa".split()),
    abbrevs=frozenset("pág págs núm tel av avda aprox ej admón".split()),
)
_FRENCH = SegmentProfile(
    function_words=frozenset("""le la les l un une des du de d au aux à en dans sur sous avec pour par sans
        et ou mais donc car ni que qu si comme quand mon ma mes ton ta tes son sa ses notre votre leur
        je j tu il elle on nous vous ils elles se s ne n est sont""".split()),
    # French typography puts a (narrow) no-break space before ? ! : ; and
    # inside « »; often a plain space in LLM output.  The mark belongs to the
    # word before it: "Bonjour !" is cut after "!", never before it.
    glue="!?:;»",
    glue_after="«",
    nobreak="\u00a0\u202f\u2007",  # also the thousands separator: "100 000" is one number
    titles=frozenset("m mm mme mmes mlle mlles mgr me pr dr".split()),
    abbrevs=frozenset("env apr av bd chap éd p pp cf vol".split()),
)
_ITALIAN = SegmentProfile(
    # With every articulated preposition: "Il museo apre alle | dieci" ended a
    # first chunk on one (bench/first_audio_langs.py).
    function_words=frozenset("""il lo la i gli le un uno una di a da in con su per tra fra del dello della dei
        degli delle al allo alla ai agli alle dal dallo dalla dai dagli dalle nel nello nella nei negli nelle
        sul sullo sulla sui sugli sulle col coi e ed o ma che se come quando mio mia tuo tua suo sua si mi ti
        ci vi è""".split()),
    titles=frozenset("sig sigg dott avv ing arch geom rag on mons".split()),
    abbrevs=frozenset("pag pagg ecc es cfr tel".split()),
)
_PORTUGUESE = SegmentProfile(
    function_words=frozenset("""o a os as um uma uns umas de do da dos das em no na nos nas ao à por pelo
        pela para com sem e ou mas que se como quando meu minha seu sua eu ele ela é são""".split()),
    titles=frozenset("sr sra srta dr dra profa exmo exma sto sta".split()),
    abbrevs=frozenset("pág págs núm tel av aprox ex".split()),
)
_HINDI = SegmentProfile(
    function_words=frozenset(),
    # Devanagari is space-separated and its words (with matras) are about as
    # long as Latin ones, so the English numbers apply.  The danda ends a
    # sentence; it is often typed after a space ("है ।") and sometimes with
    # none after it ("है।वह"), so it glues to the word before and allows a cut
    # without whitespace.  "डॉ." (Dr.) is the common dotted title.
    terminators="।॥",
    glue="।॥",
    cut_sentence="。！？।॥",
    mark_runs=True,
    titles=frozenset("डॉ प्रो श्री श्रीमती सुश्री".split()),
)

# Chinese and Japanese: no spaces, so the first chunk is counted in characters
# and chunk sizes are scaled down.  Reading rates: English ~14-16 chars/s;
# Mandarin ~4-5 hanzi/s (one syllable each); Japanese ~5-6 chars/s (a kana is
# one mora, a kanji about two; ~7-8 morae/s).  So one hanzi carries the speech
# of ~3.5 Latin chars and one Japanese character ~3.  Each English value is
# divided by that ratio and rounded:
#   first_min: 4 words ~ 23 chars incl. spaces (~1.5 s)  -> zh 6,  ja 8
#   first_max: 12 words ~ 68 chars (~4.5 s)              -> zh 20, ja 23
#   min_chunk 40, ramp (100, 200), max_chunk 300 chars   -> zh 12, (30, 60), 85; ja 13, (33, 67), 100
# At roughly 3-5 phoneme tokens per character, 85 hanzi / 100 Japanese
# characters stay inside Kokoro's 510-token window, as 300 English chars do.
_CJK_OPENERS = "「『（【《〈〔［｛“‘"
_CJK_CLOSERS = "」』）】》〉〕］｝”’"
_CHINESE = SegmentProfile(
    function_words=frozenset(),
    unit="chars",
    first_min=6,
    first_max=20,
    min_chunk=12,
    max_chunk=85,
    ramp=(30, 60),
    terminators="。！？．",
    clause_marks="，、；：",
    openers=_CJK_OPENERS,
    closers=_CJK_CLOSERS,
    cut_sentence="。！？．",
    cut_clause="，、；：",
    unspaced=True,
    mark_runs=True,
    full_stop="。",
)
_JAPANESE = SegmentProfile(
    function_words=frozenset(),
    unit="chars",
    first_min=8,
    first_max=23,
    min_chunk=13,
    max_chunk=100,
    ramp=(33, 67),
    terminators="。！？．｡",  # ｡ ､ ｢ ｣: the half-width forms still met in Japanese text
    clause_marks="，、；：､",
    openers=_CJK_OPENERS + "｢",
    closers=_CJK_CLOSERS + "｣",
    cut_sentence="。！？．｡",
    cut_clause="，、；：､",
    unspaced=True,
    mark_runs=True,
    full_stop="。",
)

PROFILES: dict[str, SegmentProfile] = {
    "en-us": _DEFAULT,
    "en-gb": _DEFAULT,
    "es": _SPANISH,
    "fr": _FRENCH,
    "it": _ITALIAN,
    "pt-br": _PORTUGUESE,
    "hi": _HINDI,
    "zh": _CHINESE,
    "ja": _JAPANESE,
}


def segment_profile(lang_code: str) -> SegmentProfile:
    """The profile for a canonical language code ('en-us', 'es', 'zh', ...).

    Unknown codes are an error rather than a silent English fallback: a caller
    that reaches here with an alias has skipped ``languages.resolve``.
    """
    profile = PROFILES.get(lang_code.strip().lower())
    if profile is None:
        raise ValueError(f"no segmentation profile for {lang_code!r}; known: {', '.join(PROFILES)}")
    return profile
