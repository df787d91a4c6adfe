"""The built-in tech lexicon: words developers' and LLMs' text is full of,
which misaki 0.9.4 reads wrongly (spells out "JSON" as J-S-O-N, reads
"kubectl" as "cube-ectle", "async" as "uh-sink").

Only words misaki gets wrong are here; SQL ("sequel"), GIF (hard g), CLI
(C-L-I), GUI ("gooey"), nginx ("engine-x"), GitHub, macOS, iOS, SQLite,
OAuth, Wi-Fi, npm, Linux, Ubuntu, Debian, Kubernetes, Docker and WebSocket
are already read the common way and are left to misaki. Phonemes follow
misaki's conventions (US: A=eɪ, I=aɪ, O=oʊ, W=aʊ, T=flap; GB: Q=əʊ, long
vowels with ː, no r after vowels), and every entry was checked by ear through
the recogniser (bench/tech_lexicon_wer.py; docs/pronunciation.md lists the
readings). A session or the daemon's lexicon file overrides any of them.
"""

from __future__ import annotations

# word -> (American, British)
_ENTRIES: dict[str, tuple[str, str]] = {
    # formats and files
    "JSON": ("ʤˈAsən", "ʤˈAsən"),
    "JSONs": ("ʤˈAsənz", "ʤˈAsənz"),
    "README": ("ɹˈidmi", "ɹˈiːdmiː"),
    "READMEs": ("ɹˈidmiz", "ɹˈiːdmiːz"),
    "YAML": ("jˈæməl", "jˈaməl"),
    "TOML": ("tˈɑməl", "tˈɒməl"),
    "LaTeX": ("lˈAtɛk", "lˈAtɛk"),
    "JPG": ("ʤˈApɛɡ", "ʤˈApɛɡ"),
    "CHANGELOG": ("ʧˈAnʤlˌɔɡ", "ʧˈAnʤlˌɒɡ"),
    "TODO": ("tˈudˌu", "tˈuːdˌuː"),
    "TODOs": ("tˈudˌuz", "tˈuːdˌuːz"),
    "FIXME": ("fˈɪksmi", "fˈɪksmiː"),
    "Makefile": ("mˈAkfˌIl", "mˈAkfˌIl"),
    # Python
    "PyPI": ("pˈIpˌiˌI", "pˈIpˌiːˌI"),
    "async": ("ˈAsɪŋk", "ˈAsɪŋk"),
    "asyncio": ("ˈAsɪŋkˌIˌO", "ˈAsɪŋkˌIˌQ"),
    "aiohttp": ("ˌAˌIˌOˌAʧtˌitˌipˈi", "ˌAˌIˌQˌAʧtˌiːtˌiːpˈiː"),
    "uvicorn": ("jˈuvikˌɔɹn", "jˈuːviːkˌɔːn"),
    "pytest": ("pˈItˌɛst", "pˈItˌɛst"),
    "mypy": ("mˈIpˌI", "mˈIpˌI"),
    "Jupyter": ("ʤˈupəTəɹ", "ʤˈuːpɪtə"),
    "Matplotlib": ("mˈætplɑtlˌɪb", "mˈatplɒtlˌɪb"),
    "CPython": ("sˈipˌIθɑn", "sˈiːpˌIθən"),
    "SQLAlchemy": ("sˈikwəlˌælkəmi", "sˈiːkwᵊlˌalkəmi"),
    "stdlib": ("stˈændəɹdlˌɪb", "stˈandədlˌɪb"),
    # programming words
    "enum": ("ˈinəm", "ˈiːnəm"),
    "enums": ("ˈinəmz", "ˈiːnəmz"),
    "config": ("kˈɑnfɪɡ", "kˈɒnfɪɡ"),
    "configs": ("kˈɑnfɪɡz", "kˈɒnfɪɡz"),
    "params": ("pəɹˈæmz", "pəɹˈamz"),
    "regex": ("ɹˈɛʤɛks", "ɹˈɛʤɛks"),
    "regexes": ("ɹˈɛʤɛksᵻz", "ɹˈɛʤɛksɪz"),
    "stdin": ("stˈændəɹd ˌɪn", "stˈandəd ˌɪn"),
    "stdout": ("stˈændəɹdˌWt", "stˈandədˌWt"),
    "stderr": ("stˈændəɹdˌɛɹəɹ", "stˈandədˌɛɹə"),
    "stdio": ("stˈændəɹdˌIˌO", "stˈandədˌIˌQ"),
    "printf": ("pɹˈɪntˌɛf", "pɹˈɪntˌɛf"),
    "nullptr": ("nˈʌlpˌYntəɹ", "nˈʌlpˌYntə"),
    "RESTful": ("ɹˈɛstfəl", "ɹˈɛstfəl"),
    "NaN": ("nˈæn", "nˈan"),
    "subprocess": ("sˈʌbpɹˌɑsɛs", "sˈʌbpɹˌQsɛs"),
    "inode": ("ˈInˌOd", "ˈInˌQd"),
    # databases
    "PostgreSQL": ("pˈOstɡɹɛskjˌuˌɛl", "pˈQstɡɹɛskjˌuːˌɛl"),
    "Postgres": ("pˈOstɡɹɛs", "pˈQstɡɹɛs"),
    "Redis": ("ɹˈɛdɪs", "ɹˈɛdɪs"),
    # shells, Unix and system tools
    "kubectl": ("kjˈubkəntɹˌOl", "kjˈuːbkəntɹˌQl"),
    "k8s": ("kˌubəɹnˈɛTiz", "kˌuːbənˈɛtiːz"),
    "systemctl": ("sˈɪstəmkəntɹˌOl", "sˈɪstɪmkəntɹˌQl"),
    "journalctl": ("ʤˈɜɹnᵊlkəntɹˌOl", "ʤˈɜːnᵊlkəntɹˌQl"),
    "sysctl": ("sˈɪskəntɹˌOl", "sˈɪskəntɹˌQl"),
    "mkdir": ("mˈAkdˌɪɹ", "mˈAkdˌɪə"),
    "zsh": ("zˈiʃˌɛl", "zˈɛdʃˌɛl"),
    "tmux": ("tˈimˌʌks", "tˈiːmˌʌks"),
    "rustc": ("ɹˈʌstsˌi", "ɹˈʌstsˌiː"),
    "libc": ("lˈɪbsˌi", "lˈɪbsˌiː"),
    "Btrfs": ("bˈʌTəɹˌɛfˌɛs", "bˈʌtəɹˌɛfˌɛs"),
    # platforms, products, models
    "PaaS": ("pˈæs", "pˈas"),
    "Deno": ("dˈinO", "dˈiːnQ"),
    "Vercel": ("vəɹsˈɛl", "vəsˈɛl"),
    "Clojure": ("klˈOʒəɹ", "klˈQʒə"),
    "ESLint": ("ˈiˌɛslˌɪnt", "ˈiːˌɛslˌɪnt"),
    "ONNX": ("ˈɑnɪks", "ˈɒnɪks"),
    "CUDA": ("kˈudə", "kˈuːdə"),
    "LLaMA": ("lˈɑmə", "lˈɑːmə"),
    # networking and security
    "IPv4": ("ˌIpˌivˈifˌɔɹ", "ˌIpˌiːvˈiːfˌɔː"),
    "IPv6": ("ˌIpˌivˈisˌɪks", "ˌIpˌiːvˈiːsˌɪks"),
    "IoT": ("ˌIˌOtˈi", "ˌIˌQtˈiː"),
    "SAML": ("sˈæməl", "sˈaməl"),
    "LDAP": ("ˈɛldæp", "ˈɛldap"),
}

TECH: dict[str, dict[str, str]] = {
    "en-us": {word: us for word, (us, _gb) in _ENTRIES.items()},
    "en-gb": {word: gb for word, (_us, gb) in _ENTRIES.items()},
}
