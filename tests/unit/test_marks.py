"""The words the bot writes carry marks (bot/domain/marks.py), never Slack markup, outside bot/slack: each surface
renders them (Slack as mrkdwn and emoji on the way out, the terminal as plain text), and the contract below finds
any Slack markup or emoji shortcode written in bot/domain or bot/services."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bot.domain.marks import Icon, code, emphasis, icon, strong, unmarked
from bot.domain.mentions import mention, mention_ids
from bot.slack.mrkdwn import mrkdwn
from bot.slack.safe_text import safe_text
from bot.terminal import plain

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE_SLACK = [ROOT / "bot" / "domain", ROOT / "bot" / "services"]
EXEMPT = {ROOT / "bot" / "domain" / "marks.py",  # where the marks are defined
          ROOT / "bot" / "domain" / "secrets.py"}  # credential patterns and the markup a secret may hide in

MARKUP = {
    "an emoji shortcode": re.compile(r"(?<![\w:]):[a-z0-9_+\-]+:(?![\w:])"),
    "mrkdwn bold": re.compile(r"(?<![\w*])\*(?=[^\s*])[^*\n]*?(?<=[^\s*])\*(?![\w*])|\*\{|\}\*"),
    "a backtick": re.compile(r"`"),
    "mrkdwn italics": re.compile(r"(?<![\w_{])_(?=[^\s_])[^_\n]*?(?<=[^\s_])_(?![\w_}])"),
    "a Slack reference": re.compile(r"<[@#!]|<https?:"),
}
LOGGERS = {"debug", "info", "warning", "error", "exception", "critical"}
# Calls whose string arguments are patterns or characters, never words for people: regexes that read Slack's own
# markup or clean a typed value before it goes into code(), and a developer's error at construction
NOT_TEXT_CALLS = {"compile", "replace", "maketrans", "translate", "sub", "ord", "ValueError", "Detector"}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _not_text(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in NOT_TEXT_CALLS:
                for argument in [*node.args, *(k.value for k in node.keywords)]:
                    found.update(id(child) for child in ast.walk(argument))
    return found


def _logged(tree: ast.AST) -> set[int]:
    """Strings given to a logger (``log.warning("…")``): for operators' logs, not shown in Slack."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOGGERS \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logger", "logging"):
            for argument in node.args:
                found.update(id(child) for child in ast.walk(argument))
    return found


def markup_in(source: str) -> list[tuple[int, str]]:
    """(line, what) of each string literal (f-strings too; not docstrings, not log messages) with Slack markup."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _logged(tree) | _not_text(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        pieces: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            pieces = [node.value]
        elif isinstance(node, ast.JoinedStr):  # the f-string as written: `*{role}*` is markup around a value
            pieces = ["".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)]
        for piece in pieces:
            for what, pattern in MARKUP.items():
                if pattern.search(piece):
                    found.append((node.lineno, what))
    return sorted(set(found))


def test_no_slack_markup_is_written_outside_bot_slack() -> None:
    found = {f"{path.relative_to(ROOT)}:{line}": what for folder in OUTSIDE_SLACK
             for path in sorted(folder.rglob("*.py")) if path not in EXEMPT
             for line, what in markup_in(path.read_text())}
    assert found == {}


def test_the_contract_sees_each_kind_of_markup() -> None:
    planted = ('x = ":warning: no"\ny = f"role *{r}*"\nz = "type `help`"\nw = f"_{note}_"\nv = f"ask <@{u}>"\n'
               'def f():\n    """Docstrings may say `code`."""\n    log.warning("`%s` failed", x)\n'
               'ok = f"{strong(role)} and {code(x)} and a_b_c and 2 * 3 * 4 and {a}_{b}"\n')
    assert markup_in(planted) == [(1, "an emoji shortcode"), (2, "mrkdwn bold"), (3, "a backtick"),
                                  (4, "mrkdwn italics"), (5, "a Slack reference")]


def test_slack_renders_marks_as_mrkdwn_and_emoji() -> None:
    text = f"{icon(Icon.DONE)} {mention('U1')} has the role {strong('power')}: {emphasis('see ' + code('help'))}"
    assert mrkdwn(text).endswith("has the role *power*: _see `help`_")
    assert safe_text(text) == ":white_check_mark: <@U1> has the role *power*: _see `help`_"
    assert mrkdwn(f"{icon(Icon.MONEY)} {icon(Icon.ALERT)} {icon(Icon.WARNING)} {icon(Icon.DENIED)}") == (
        ":money_with_wings: :rotating_light: :warning: :no_entry:")


def test_a_terminal_renders_marks_as_plain_text() -> None:
    text = f"{icon(Icon.DONE)} {mention('U1')} has the role {strong('power')}: {emphasis('see ' + code('help'))}"
    assert plain(text) == "✓ U1 has the role power: see help"
    assert plain(f"{icon(Icon.WARNING)} bad") == "! bad"
    assert plain(f"{icon(Icon.DENIED)} no") == "✗ no"
    assert plain(f"{icon(Icon.MONEY)} Your budget") == "Your budget"  # no glyph, no leading space


def test_stray_mark_characters_render_as_nothing() -> None:
    assert mrkdwn("a\ue002b\ue003c\ue003") == "abc"
    assert plain("half \ue002*open") == "half *open"
    assert mrkdwn(strong("")) == ""


def test_stored_text_keeps_the_words_and_bare_ids() -> None:
    text = f"{icon(Icon.DENIED)} {mention('U1')} may not grant {strong('owner')} ({emphasis(code('x'))})."
    assert mention_ids(unmarked(text)) == "U1 may not grant owner (x)."
    assert unmarked(f"{icon(Icon.DONE)} done", {Icon.DONE: "✓"}) == "✓ done"
    assert unmarked("no marks at all") == "no marks at all"


def test_a_streamed_answer_in_a_terminal_keeps_claudes_markdown_and_drops_the_marks() -> None:
    from bot.terminal import unmarks

    assert unmarks(f"**bold** and `code`\n\n{emphasis(icon(Icon.WARNING) + ' cut off')}") == (
        "**bold** and `code`\n\n! cut off")
