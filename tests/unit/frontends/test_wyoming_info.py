"""Wyoming `info` and voice mapping (sans-I/O), and the --wyoming-uri/--zeroconf
settings: what Home Assistant is told, and how its voice requests map."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from wyoming.info import Info
from wyoming.tts import SynthesizeVoice

from kokorod.assets.voices import VoiceStore
from kokorod.cli.serve import add_server_args
from kokorod.config import ServerConfig
from kokorod.errors import InputError, KokorodError
from kokorod.frontends.wyoming import check_wyoming_config
from kokorod.frontends.wyoming_info import (
    DEFAULT_VOICE, WYOMING_LANGUAGE, VoiceChoice, build_info, resolve_voice, voice_description,
)
from kokorod.protocol.messages import LanguageInfo
from kokorod.text import languages

VOICES = ("af_bella", "af_heart", "bf_emma", "bm_george", "ef_dora", "ff_siwis", "hf_alpha", "if_sara",
          "jf_alpha", "pf_dora", "zf_xiaobei", "zm_yunxi")


def services(tmp_path: Path, *, default: str = "af_heart", unavailable: tuple[str, ...] = ()) -> Any:
    for name in VOICES:
        (tmp_path / f"{name}.bin").touch()
    catalog = tuple(LanguageInfo(lang.code, lang.name, tuple(v for v in VOICES if v[0] == lang.letter),
                                 lang.code not in unavailable) for lang in languages.LANGUAGES)
    return SimpleNamespace(config=ServerConfig(voice=default), voices=VOICES, languages=catalog,
                           synth=SimpleNamespace(voices=VoiceStore(tmp_path, fetch_missing=False)))


def test_every_language_has_a_piper_style_locale_that_maps_back() -> None:
    assert set(WYOMING_LANGUAGE) == set(languages.CODES) == set(DEFAULT_VOICE)
    for code, locale in WYOMING_LANGUAGE.items():
        lang, region = locale.split("_")
        assert lang.islower() and region.isupper()
        assert languages.resolve(locale).code == code  # what HA shows is also what we accept
        assert languages.for_voice(DEFAULT_VOICE[code]).code == code


def test_info_lists_every_voice_once_with_its_language(tmp_path: Path) -> None:
    info = build_info(services(tmp_path, unavailable=("ja", "zh")))
    event = info.event()
    again = Info.from_event(event)  # survives the wire
    (program,) = again.tts
    assert program.supports_synthesize_streaming and program.installed and program.name == "kokorod"
    by_name = {v.name: v for v in program.voices}
    assert list(by_name) == list(VOICES)
    assert by_name["bm_george"].languages == ["en_GB"] and by_name["pf_dora"].languages == ["pt_BR"]
    assert by_name["hf_alpha"].languages == ["hi_IN"] and by_name["ff_siwis"].languages == ["fr_FR"]
    assert [v.name for v in program.voices if not v.installed] == ["jf_alpha", "zf_xiaobei", "zm_yunxi"]
    assert all(v.attribution.name and v.attribution.url and v.version for v in program.voices)


def test_voice_descriptions() -> None:
    assert voice_description("af_heart", languages.resolve("en-us")) == "Heart (American English, female)"
    assert voice_description("zm_yunxi", languages.resolve("zh")) == "Yunxi (Mandarin Chinese, male)"


@pytest.mark.parametrize(("requested", "expected"), [
    (None, VoiceChoice("af_heart")),
    (SynthesizeVoice(), VoiceChoice("af_heart")),
    (SynthesizeVoice(name="bf_emma"), VoiceChoice("bf_emma")),
    (SynthesizeVoice(name=" af_heart:0.6,af_bella:0.4 "), VoiceChoice("af_heart:0.6,af_bella:0.4")),
    (SynthesizeVoice(name="ef_dora", language="fr_FR"), VoiceChoice("ef_dora")),  # name overrides language
    (SynthesizeVoice(name="ef_dora", speaker="0"), VoiceChoice("ef_dora")),
    (SynthesizeVoice(language="en_US"), VoiceChoice("af_heart", "en-us")),
    (SynthesizeVoice(language="en-GB"), VoiceChoice("bf_emma", "en-gb")),
    (SynthesizeVoice(language="es"), VoiceChoice("ef_dora", "es")),
    (SynthesizeVoice(language="pt"), VoiceChoice("pf_dora", "pt-br")),
    (SynthesizeVoice(language="zh_CN"), VoiceChoice("zf_xiaobei", "zh")),
])
def test_resolve_voice(tmp_path: Path, requested: SynthesizeVoice | None, expected: VoiceChoice) -> None:
    assert resolve_voice(requested, services(tmp_path)) == expected


def test_language_alone_prefers_the_daemons_own_voice_then_any_voice_of_it(tmp_path: Path) -> None:
    svc = services(tmp_path, default="bm_george")
    assert resolve_voice(SynthesizeVoice(language="en_GB"), svc) == VoiceChoice("bm_george", "en-gb")
    assert resolve_voice(SynthesizeVoice(language="en_US"), svc) == VoiceChoice("af_heart", "en-us")
    svc.voices = tuple(v for v in VOICES if v != "zf_xiaobei")
    assert resolve_voice(SynthesizeVoice(language="zh"), svc) == VoiceChoice("zm_yunxi", "zh")
    svc.voices = tuple(v for v in VOICES if v[0] != "z")
    with pytest.raises(InputError, match="no voice for language"):
        resolve_voice(SynthesizeVoice(language="zh"), svc)


@pytest.mark.parametrize("requested", [SynthesizeVoice(name="en_US-lessac-medium"), SynthesizeVoice(name="af_heart:x"),
                                       SynthesizeVoice(name="xx_yyy"), SynthesizeVoice(language="de_DE")])
def test_unknown_voices_and_languages_raise_input_error(tmp_path: Path, requested: SynthesizeVoice) -> None:
    with pytest.raises(InputError):
        resolve_voice(requested, services(tmp_path))


# -- settings ----------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_server_args(p)
    return p.parse_args(list(argv))


def test_flags_are_off_by_default_and_parse() -> None:
    args = parse()
    assert args.wyoming_uri is None and args.zeroconf is None
    assert ServerConfig().wyoming_uri is None and ServerConfig().zeroconf is None
    args = parse("--wyoming-uri", "tcp://127.0.0.1:10200", "--zeroconf")
    assert args.wyoming_uri == "tcp://127.0.0.1:10200" and args.zeroconf == "kokorod"
    assert parse("--wyoming-uri", "tcp://[::1]:10200", "--zeroconf", "kitchen").zeroconf == "kitchen"
    assert parse("--wyoming-uri", "unix:///run/kokorod.sock").wyoming_uri == "unix:///run/kokorod.sock"


@pytest.mark.parametrize("uri", ["127.0.0.1:10200", "tcp://127.0.0.1", "http://127.0.0.1:10200", "tcp://:10200",
                                 "tcp://127.0.0.1:99999", "tcp://127.0.0.1:port"])
def test_bad_uris_fail_at_parse_time(uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--wyoming-uri", uri)
    assert "--wyoming-uri" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.2"])
def test_loopback_is_allowed_without_insecure(host: str) -> None:
    check_wyoming_config(ServerConfig(wyoming_uri=f"tcp://{host}:10200", zeroconf="kokorod"))
    check_wyoming_config(ServerConfig())  # off


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "[::]", "kokorod.lan"])
def test_non_loopback_needs_insecure_even_with_a_token(host: str) -> None:
    for config in (ServerConfig(wyoming_uri=f"tcp://{host}:10200"),
                   ServerConfig(wyoming_uri=f"tcp://{host}:10200", token="secret")):
        with pytest.raises(KokorodError, match="no authentication") as err:
            check_wyoming_config(config)
        assert "--insecure" in (err.value.fix or "")
    check_wyoming_config(ServerConfig(wyoming_uri=f"tcp://{host}:10200", insecure=True))


def test_zeroconf_needs_a_tcp_wyoming_server() -> None:
    with pytest.raises(KokorodError, match="zeroconf"):
        check_wyoming_config(ServerConfig(zeroconf="kokorod"))
    with pytest.raises(KokorodError, match="tcp://"):
        check_wyoming_config(ServerConfig(wyoming_uri="unix:///tmp/k.sock", zeroconf="kokorod"))
    check_wyoming_config(ServerConfig(wyoming_uri="unix:///tmp/k.sock"))
