"""Credentials in what people send to Claude (docs/security.md, `SECRET_POLICY`): a curated set of compiled patterns.

Each detector has literal triggers checked first (``in`` on the text is a fast C scan), so ordinary text costs a
few substring searches and no regular expression at all; only a text holding a trigger runs that detector's
pattern. Patterns follow the providers' documented token formats and are kept tight (prefix plus length and
alphabet) so prose and code rarely match: tests measure it on a corpus.

What is scanned is the text as a person reads it: invisible format characters (zero-width spaces and joiners, the
byte-order mark, soft hyphens, bidi controls) are left out, a prefix broken by whitespace or a line break right
after its separator (``sk-ant-api03-`` then a new line) is joined to what follows, and Slack's formatting markers
(``_italic_``, ``*bold*``, ``~strike~``, `` `code` ``) bound a token like a space. Findings are positions in the
text as given, so redaction covers the whole credential, its invisible characters and line break included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.domain.requests import ChatRequest


class SecretPolicy(StrEnum):
    BLOCK = "block"  # the new message (or its files) holding a secret is not sent; history is redacted
    REDACT = "redact"  # every secret is replaced by [redacted: <kind>] in what is sent
    OFF = "off"


@dataclass(frozen=True)
class Detector:
    kind: str  # shown to people: "GitHub token"
    triggers: tuple[str, ...]  # the pattern can only match where one of these occurs (case-sensitive)
    pattern: re.Pattern[str]
    group: int = 0  # the part that is the secret (a URL keeps its scheme, user and host)
    # The match must not continue a word (the pattern itself starts with a literal, for the fast prefix scan)
    word_start: bool = True
    ignore_case_triggers: bool = False  # triggers are looked for in the lower-cased text


_PLACEHOLDER_PASSWORDS = frozenset({
    "password", "passwd", "pass", "pwd", "secret", "changeme", "example", "xxx", "xxxx", "xxxxx", "***", "****",
    "*****", "******", "********", "redacted", "hunter2", "p@ssw0rd", "mypassword", "yourpassword", "token", "",
})

DETECTORS: tuple[Detector, ...] = (
    Detector("Anthropic API key", ("sk-ant-",), re.compile(r"sk-ant-[a-z]{3,5}\d{2}-[A-Za-z0-9_-]{20,}")),
    Detector("Slack token", ("xox",),
             re.compile(r"xox(?:[abposr]-\d{6,}-[0-9A-Za-z-]{8,}|e(?:\.xox[bp])?-\d-[0-9A-Za-z-]{20,})")),
    Detector("Slack app token", ("xapp-",), re.compile(r"xapp-\d-[A-Z0-9]{6,}-\d{6,}-[a-f0-9]{32,}")),
    Detector("Slack webhook URL", ("hooks.slack.com/",),
             re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,}")),
    Detector("AWS access key", ("AKIA", "ASIA", "ABIA", "ACCA"),
             re.compile(r"A(?:KIA|SIA|BIA|CCA)[A-Z2-7]{16}(?![A-Z0-9])")),
    # AWS_SECRET_ACCESS_KEY, aws_secret_key, AWS_SECRET… assigned 40 characters (a secret access key's length)
    Detector("AWS secret key", ("aws_secret", "awssecret", "secret_access_key", "secretaccesskey"),
             re.compile(r"(?i:aws_?secret(?:_?access)?(?:_?key)?|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
                        r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"), group=1, ignore_case_triggers=True, word_start=False),
    Detector("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
             re.compile(r"g(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{50,255})"
                        r"(?![A-Za-z0-9]|_[A-Za-z0-9])")),  # a closing `_` (Slack italics) ends it
    Detector("GitLab token", ("glpat-",), re.compile(r"glpat-[A-Za-z0-9_-]{20,}")),
    Detector("Google API key", ("AIza",), re.compile(r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z-]|_[0-9A-Za-z_-])")),
    Detector("OpenAI API key", ("sk-proj-", "sk-svcacct-", "T3BlbkFJ"),
             re.compile(r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})")),
    Detector("Stripe secret key", ("sk_live_", "rk_live_"), re.compile(r"[rs]k_live_[0-9A-Za-z]{24,}")),
    Detector("npm token", ("npm_",), re.compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9]|_[A-Za-z0-9])")),
    Detector("private key", ("PRIVATE KEY",),
             re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
                        r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|(?:\s*[A-Za-z0-9+/=]+)*)"),
             word_start=False),
    Detector("JWT", ("eyJ",),
             re.compile(r"eyJ[A-Za-z0-9_-]{8,}={0,2}\.eyJ[A-Za-z0-9_-]{8,}={0,2}\.[A-Za-z0-9_-]{16,}={0,2}")),
    Detector("password in a URL", ("://",),
             # starts at the literal "://" (a fast scan); the scheme before it is not needed to find the password
             re.compile(r"://[^\s:/@<>\"'`]{1,128}:([^\s/@<>\"'`]{1,256})@[A-Za-z0-9.-]+"), group=1, word_start=False),
)


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


def _placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return (lowered in _PLACEHOLDER_PASSWORDS or lowered.startswith(("<", "${", "{", "%", "$", "[")) or
            set(lowered) <= {"*", "x", "."})


# Unicode's format characters (category Cf): invisible, so a credential with one inside reads as the credential.
# Written out rather than derived from unicodedata at import (that walks 1.1 million code points); a test checks it
# against the running Python's Unicode database.
_INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]+")
# Whitespace (a line break, a narrow window's wrap) right after a short token ending in a separator, a prefix such as
# ``sk-ant-api03-`` or ``ghp_``, before more of a token. Only short ones: a whole key that ends in ``-`` is not
# joined to the next line's first word (a fixed-length pattern would then miss it).
_SPLIT_PREFIX = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9][A-Za-z0-9_-]{0,18}[-_](?P<gap>\s+)(?=[A-Za-z0-9])")
_SEPARATOR_GAP = re.compile(r"[-_]\s")  # a quick scan first: most texts hold no such gap at all
SLACK_MARKERS = "_*~`"  # _italic_, *bold*, ~strike~, `code`: around a token they bound it like a space


def _without(text: str, pattern: re.Pattern[str], group: int | str = 0) -> tuple[str, list[int] | None]:
    """``text`` without the ``group`` of each match of ``pattern``, and for each character kept its index in
    ``text`` (None: nothing removed)."""
    last, pieces, kept = 0, [], list[int]()
    for match in pattern.finditer(text):
        start, end = match.span(group)
        pieces.append(text[last:start])
        kept.extend(range(last, start))
        last = end
    if not pieces:
        return text, None
    pieces.append(text[last:])
    kept.extend(range(last, len(text)))
    return "".join(pieces), kept


def scanned_text(text: str) -> tuple[str, list[int] | None]:
    """The text as a person reads it (format characters left out, a prefix split after its separator joined), and
    for each of its characters the index in ``text`` it came from (None: the same text)."""
    origin: list[int] | None = None
    if not text.isascii():  # ASCII has no format characters (and isascii is not a scan: CPython knows it)
        text, origin = _without(text, _INVISIBLE)
    joined = None
    if _SEPARATOR_GAP.search(text):
        text, joined = _without(text, _SPLIT_PREFIX, "gap")
    if joined is not None:
        origin = joined if origin is None else [origin[i] for i in joined]
    return text, origin


def _starts_a_word(text: str, start: int, origin: list[int] | None) -> bool:
    """Whether a match at ``start`` begins a token: nothing word-like just before it. Something removed just before
    it (a zero-width space) parts it from what precedes, and so do Slack's formatting markers (``_ghp_…_``) unless
    they themselves follow a word (``name_ghp_…`` continues it)."""
    if not start or (origin is not None and origin[start] != origin[start - 1] + 1):
        return True
    before = start - 1
    if text[before] == "_":
        while before >= 0 and text[before] in SLACK_MARKERS:
            before -= 1
        return before < 0 or not (text[before].isalnum() or text[before] == "_")
    return not text[before].isalnum()


def find_secrets(text: str) -> list[Finding]:
    """Every credential found in ``text``, in order, without overlaps (the first detector to claim a span wins).
    Positions are in ``text`` as given; what is scanned is ``scanned_text(text)``."""
    if not text:
        return []
    scanned, origin = scanned_text(text)
    lowered: str | None = None
    findings: list[Finding] = []
    for detector in DETECTORS:
        if detector.ignore_case_triggers:
            lowered = lowered if lowered is not None else scanned.lower()
            haystack = lowered
        else:
            haystack = scanned
        if not any(trigger in haystack for trigger in detector.triggers):
            continue
        for match in detector.pattern.finditer(scanned):
            start, end = match.span(detector.group)
            if detector.word_start and not _starts_a_word(scanned, match.start(), origin):
                continue
            if detector.group and _placeholder(match.group(detector.group)):
                continue
            if origin is not None:
                start, end = origin[start], origin[end - 1] + 1
            if any(start < f.end and f.start < end for f in findings):
                continue
            findings.append(Finding(detector.kind, start, end))
    findings.sort(key=lambda f: f.start)
    return findings


def secret_kinds(text: str) -> list[str]:
    """The kinds of credential in ``text``, each once, in order of appearance."""
    return list(dict.fromkeys(f.kind for f in find_secrets(text)))


def redact(text: str, findings: list[Finding] | None = None) -> str:
    """``text`` with each credential replaced by ``[redacted: <kind>]``."""
    findings = find_secrets(text) if findings is None else findings
    if not findings:
        return text
    parts: list[str] = []
    last = 0
    for finding in findings:
        parts.append(text[last:finding.start])
        parts.append(f"[redacted: {finding.kind}]")
        last = finding.end
    parts.append(text[last:])
    return "".join(parts)


@dataclass(frozen=True)
class Screened:
    """A text as it may be sent and stored: credentials redacted, and which kinds there were."""

    text: str
    kinds: tuple[str, ...] = ()


def screen(text: str) -> Screened:
    findings = find_secrets(text)
    if not findings:
        return Screened(text)
    return Screened(redact(text, findings), tuple(dict.fromkeys(f.kind for f in findings)))


def kinds_phrase(kinds: tuple[str, ...] | list[str]) -> str:
    """"a GitHub token", "an AWS access key and a JWT"."""
    named = [f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}" for kind in kinds]
    if len(named) <= 1:
        return "".join(named)
    return ", ".join(named[:-1]) + " and " + named[-1]


def screen_request(request: ChatRequest, policy: SecretPolicy) -> ChatRequest:
    """The request as it may be judged, stored and sent: with any policy but ``off`` its text is redacted, and
    ``secrets`` names what was found (``block`` refuses on that; ``redact`` sends the redacted text)."""
    if request.screened or policy is SecretPolicy.OFF:
        return request
    result = screen(request.text)
    return replace(request, text=result.text, secrets=result.kinds, screened=True)


def blocked_message(kinds: tuple[str, ...] | list[str], *, in_channel: bool) -> tuple[str, str]:
    """(why, what to do) for a refused message, naming the kinds but never the secret."""
    it = "it" if len(kinds) == 1 else "them"
    where = "everyone in this channel" if in_channel else "anyone who can read this conversation"
    return (f"Your message contains {kinds_phrase(kinds)}, so I did not send it to Claude.",
            f"Rotate {it} now ({where} could read {it}), delete the message, then ask again without {it}.")
