"""The secret detectors (bot/domain/secrets): one test per provider, redaction, and a false-positive corpus.

Test credentials are assembled from parts so this file holds no complete token a scanner would flag.
"""

from __future__ import annotations

import pytest

from bot.domain.secrets import find_secrets, kinds_phrase, redact, screen, secret_kinds

ALNUM = "A1b2C3d4E5f6G7h8J9k0"


def token(prefix: str, length: int, alphabet: str = ALNUM) -> str:
    return prefix + (alphabet * (length // len(alphabet) + 1))[:length]


PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "\n" + "x" * 64
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + "." + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ" + "."
       + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")

PROVIDERS = [
    ("Anthropic API key", token("sk-ant-" + "api03-", 93)),
    ("Anthropic API key", token("sk-ant-" + "admin01-", 80)),
    ("Slack token", token("xo" + "xb-", 40, "1234567890-")),
    ("Slack token", "xo" + "xp-1234567890-9876543210-1122334455-" + "0123456789abcdef" * 2),
    ("Slack token", "xo" + "xe.xoxp-1-" + token("Mi0yLTEyMzQ1", 60)),
    ("Slack app token", "xa" + "pp-1-A0123BCDEF-1234567890123-" + "0123456789abcdef" * 4),
    ("Slack webhook URL", "https://hooks.slack.com/" + "services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("AWS access key", "AK" + "IAIOSFODNN7EXAMPLE"),
    ("AWS access key", "AS" + "IAZ2Y3X4W5V6U7T6S5R4"[:18]),
    ("AWS secret key", "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("GitHub token", token("gh" + "p_", 36)),
    ("GitHub token", token("gh" + "s_", 36)),
    ("GitHub token", token("github" + "_pat_", 82, "11ABCDEFG0_abcdefgh")),
    ("GitLab token", token("gl" + "pat-", 20)),
    ("Google API key", token("AI" + "za", 35, "SyB-cd_EF12gh")),
    ("OpenAI API key", token("sk-" + "proj-", 120)),
    ("Stripe secret key", token("sk_" + "live_", 24)),
    ("npm token", token("np" + "m_", 36)),
    ("private key", "-----BEGIN RSA " + "PRIVATE KEY-----\n" + PEM_BODY + "\n-----END RSA PRIVATE KEY-----"),
    ("private key", "-----BEGIN " + "PRIVATE KEY-----\n" + PEM_BODY + "\n-----END PRIVATE KEY-----"),
    ("private key", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n" + PEM_BODY),  # pasted without its end line
    ("JWT", JWT),
    ("password in a URL", "postgresql://app:" + "s3cr3t-Pa55@db.internal:5432/prod"),
    ("password in a URL", "https://deploy:" + "9f8e7d6c5b4a@git.example.com/repo.git"),
]


@pytest.mark.parametrize(("kind", "secret"), PROVIDERS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(PROVIDERS)])
def test_each_provider_is_found_alone_and_inside_text(kind: str, secret: str) -> None:
    assert secret_kinds(secret) == [kind]
    text = f"Hi! Why does this fail?\n```\nexport TOKEN={secret}\n```\nThanks"
    assert secret_kinds(text) == [kind]
    redacted = redact(text)
    assert f"[redacted: {kind}]" in redacted
    assert redacted.startswith("Hi! Why does this fail?") and redacted.endswith("Thanks")
    (finding,) = find_secrets(text)
    assert text[finding.start:finding.end] in secret


def test_url_redaction_keeps_the_address_without_the_password() -> None:
    text = "connect with postgresql://app:" + "s3cr3t-Pa55@db.internal:5432/prod please"
    assert redact(text) == "connect with postgresql://app:[redacted: password in a URL]@db.internal:5432/prod please"


def test_several_kinds_are_named_once_each_in_order() -> None:
    text = " and ".join([JWT, token("gh" + "p_", 36), token("gh" + "o_", 36), "AK" + "IAIOSFODNN7EXAMPLE"])
    result = screen(text)
    assert result.kinds == ("JWT", "GitHub token", "AWS access key")
    assert "ghp_" not in result.text and "eyJ" not in result.text
    assert kinds_phrase(result.kinds) == "a JWT, a GitHub token and an AWS access key"


# Ordinary prose and code people ask Claude about: none of it is a credential.
CORPUS = [
    "Can you summarise the Q3 planning doc and list the open questions for the platform team?",
    "The API key goes in the ANTHROPIC_API_KEY environment variable; never commit it.",
    "Use `sk-ant-...` style keys from the console; ours start with sk-ant-api03 and are 108 characters long.",
    "Set SLACK_BOT_TOKEN=xoxb-your-token in .env and restart.",
    "export AWS_ACCESS_KEY_ID=<your key id> and AWS_SECRET_ACCESS_KEY=<your secret>",
    "postgresql://user:password@localhost:5432/app is the example URL in the README",
    "DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (trust auth, no password)",
    "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app",
    "redis://:****@cache:6379/0",
    "See https://github.com/anthropics/anthropic-sdk-python/issues/1258 and https://api.slack.com/methods",
    "def parse(token: str) -> dict:\n    header, payload, signature = token.split('.')\n"
    "    return json.loads(b64(payload))",
    "git checkout -b feature/AKIA-migration && git push origin HEAD",
    "The commit 3f9a2b1c4d5e6f708192a3b4c5d6e7f8091a2b3c fixed it; "
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "UUIDs like 123e4567-e89b-12d3-a456-426614174000 identify rows.",
    "base64 of 'hello world' is aGVsbG8gd29ybGQ= and of JSON it often starts with eyJ.",
    "ghp_ prefixes mark GitHub personal tokens; github_pat_ the fine-grained ones.",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "for (let i = 0; i < items.length; i++) { total += items[i].price * items[i].qty; }",
    "SELECT user_id, count(*) FROM request_records WHERE created_at > now() - interval '7 days' GROUP BY 1;",
    "Our AIza-style Google keys are restricted by referrer; rotate them yearly.",
    "Email ana@example.com or call +1 415 555 0100 about the offsite.",
    "ftp://ftp.example.com/pub/file.txt and mailto:someone@example.com",
    "http://localhost:3000/slack/events receives events; GET /healthz answers {\"ok\": true}",
    "The regex ^[A-Za-z0-9_-]{20,}$ matches long identifiers such as a_really_long_identifier_name_here.",
    "kubectl create secret generic db --from-literal=password=$(cat pw.txt)",
    "ssh-keygen -t ed25519 -C 'ana@laptop' writes ~/.ssh/id_ed25519 (keep it private).",
    "npm_config_registry and npm_lifecycle_event are ordinary npm variables.",
    "Stripe test keys start with sk_test_ and are safe to share in docs.",
    "Résumé: 10 ans d'expérience — 東京で働いていました。Ещё вопрос: как дела?",
]


@pytest.mark.parametrize("text", CORPUS)
def test_ordinary_prose_and_code_is_not_a_secret(text: str) -> None:
    assert find_secrets(text) == []


def test_false_positive_rate_on_the_corpus_is_zero() -> None:
    flagged = [text for text in CORPUS if find_secrets(text)]
    assert flagged == []
    assert len(CORPUS) >= 30


def test_empty_and_long_plain_text() -> None:
    assert find_secrets("") == []
    long_text = ("All work and no play makes Jack a dull boy. " * 100)[:4000]
    assert screen(long_text).text == long_text and screen(long_text).kinds == ()


ANTHROPIC = token("sk-ant-" + "api03-", 93)
GITHUB = token("gh" + "p_", 36)
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"

# What people paste that still is the credential: each is found, and its redaction leaves no part of it.
DISGUISED = [
    ("Anthropic API key", "a newline after the prefix", "sk-ant-" + "api03-\n" + ANTHROPIC[13:]),
    ("Anthropic API key", "spaces and a CRLF after the prefix", "sk-ant-" + "api03-  \r\n  " + ANTHROPIC[13:]),
    ("Anthropic API key", "the prefix itself broken", "sk-ant-" + "\napi03-\n" + ANTHROPIC[13:]),
    ("GitHub token", "a newline after ghp_", "gh" + "p_\n" + GITHUB[4:]),
    ("Anthropic API key", "a zero-width space inside", ANTHROPIC[:30] + "\u200b" + ANTHROPIC[30:]),
    ("Anthropic API key", "a zero-width joiner in the prefix", "sk-\u200dant-" + ANTHROPIC[7:]),
    ("GitHub token", "a word joiner and a BOM", GITHUB[:3] + "\u2060" + GITHUB[3:20] + "\ufeff" + GITHUB[20:]),
    ("AWS access key", "a soft hyphen inside", "AK" + "IA\u00adQ3EGUFZK7XMPL4RT"),
    ("Anthropic API key", "Slack italics", "_" + ANTHROPIC + "_"),
    ("GitHub token", "Slack italics", "_" + GITHUB + "_"),
    ("GitHub token", "bold italics", "*_" + GITHUB + "_*"),
    ("GitHub token", "strike-through", "~" + GITHUB + "~"),
    ("GitHub token", "inline code", "`" + GITHUB + "`"),
    ("npm token", "Slack italics", "_" + token("np" + "m_", 36) + "_"),
    ("Google API key", "Slack italics", "_" + token("AI" + "za", 35, "SyB-cd_EF12gh") + "_"),
    ("AWS secret key", "AWS_SECRET without a key id", "AWS_SECRET=" + AWS_SECRET),
    ("AWS secret key", "aws_secret_key in YAML", "aws_secret_key: " + AWS_SECRET),
    ("AWS secret key", "quoted AWS_SECRET_ACCESS_KEY", 'AWS_SECRET_ACCESS_KEY="' + AWS_SECRET + '"'),
    ("AWS secret key", "AWSSecretKey in JSON", '"AWSSecretKey": "' + AWS_SECRET + '"'),
]


@pytest.mark.parametrize(("kind", "how", "text"), DISGUISED, ids=[f"{k}-{h}" for k, h, _ in DISGUISED])
def test_a_disguised_credential_is_found_and_wholly_redacted(kind: str, how: str, text: str) -> None:
    message = f"Hi, why does this fail? {text} thanks"
    assert secret_kinds(message) == [kind]
    redacted = redact(message)
    assert redacted.startswith("Hi, why does this fail? ") and redacted.endswith(" thanks")
    assert f"[redacted: {kind}]" in redacted
    secret = {"Anthropic API key": ANTHROPIC, "GitHub token": GITHUB, "AWS secret key": AWS_SECRET}.get(kind)
    visible = "".join(ch for ch in redacted if ch.isalnum())
    for part in ([secret[:12], secret[12:24], secret[-12:]] if secret else []):
        assert part not in redacted and part not in visible, part


def test_a_whole_key_ending_in_a_dash_is_not_joined_to_the_next_line() -> None:
    google = token("AI" + "za", 34, "SyB-cd_EF12gh") + "-"
    text = f"GOOGLE_KEY={google}\nREGION=eu-west-1"
    (finding,) = find_secrets(text)
    assert text[finding.start:finding.end] == google
    assert redact(text) == "GOOGLE_KEY=[redacted: Google API key]\nREGION=eu-west-1"


def test_a_token_inside_a_longer_word_is_still_not_one() -> None:
    assert find_secrets("name_" + GITHUB) == []
    assert find_secrets("XAK" + "IAQ3EGUFZK7XMPL4RT") == []


# Prose that the normalising must not turn into credentials: hyphens and underscores at line ends, Slack
# formatting, zero-width characters in ordinary words, emoji sequences.
NORMALISED_CORPUS = [
    "The rollout is a two-\nstep process: first staging, then production.",
    "Rename my_long_variable_\nname_for_the_config to something shorter.",
    "_Please_ review the *draft* and ~old~ `new` wording before Friday.",
    "ghp_ and\nsk-ant- are prefixes; keys follow them after no space.",
    "AWS_SECRET_ARN=arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
    "AWS_SECRET_NAME=prod/payments/database-credentials-for-the-ledger-service",
    "Family emoji 👨\u200d👩\u200d👧 and a soft\u00adhyphen in a long word.",
    "export AWS_SECRET_ACCESS_KEY=$(aws configure get aws_secret_access_key)",
]


@pytest.mark.parametrize("text", NORMALISED_CORPUS)
def test_normalising_keeps_prose_clean(text: str) -> None:
    assert find_secrets(text) == []


def test_every_format_character_of_this_unicode_is_left_out() -> None:
    import sys
    import unicodedata

    from bot.domain.secrets import scanned_text

    invisible = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    assert scanned_text("a" + "".join(invisible) + "b")[0] == "ab"
