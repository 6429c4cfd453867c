"""Files with a question (docs/using.md): images and PDFs as content blocks, text files as text, from the
message and earlier in its thread (newest first), fetched from url_private with the bot token, within Anthropic's
per-request limits; one line for each file that is not sent; the role policy's `attachments` switch."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select, update

from bot.domain.estimate import IMAGE_MAX_TOKENS, PDF_PAGE_TOKENS, input_tokens_bound, text_tokens_bound
from bot.domain.files import IMAGE_MAX_BYTES
from bot.domain.roles import Role
from bot.store.models import RolePolicyRow, SpendCounter
from tests.support.harness import BOT_TOKEN, Harness, eventually


def png(width: int = 2, height: int = 2, padding: int = 0) -> bytes:
    """A real PNG (and ``padding`` bytes of an ancillary chunk to make it as large as a test needs)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    extra = chunk(b"tEXt", b"pad\x00" + b"x" * padding) if padding else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + extra
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pdf_objects(pages: int) -> list[bytes]:
    """The catalog (object 1), the page tree (2) and ``pages`` blank pages (3…) of a PDF."""
    kids = " ".join(f"{n + 3} 0 R" for n in range(pages))
    return [b"<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
            *[b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages]


def pdf(pages: int) -> bytes:
    """A PDF 1.4 as older writers make it: each object in the clear, a classic cross-reference table."""
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, obj in enumerate(pdf_objects(pages), start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(offsets) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(offsets) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pdf_in_object_streams(pages: int) -> bytes:
    """A PDF 1.5 as today's writers make it: the catalog, the page tree and every page inside one compressed object
    stream (/ObjStm), indexed by a cross-reference stream (/XRef). No page object is in the raw bytes."""
    objects = pdf_objects(pages)
    offsets, body = [], b""
    for obj in objects:
        offsets.append(len(body))
        body += obj + b"\n"
    index = " ".join(f"{number} {offset}" for number, offset in enumerate(offsets, start=1)).encode() + b"\n"
    stream_number, xref_number = len(objects) + 1, len(objects) + 2
    packed = zlib.compress(index + body)
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    stream_offset = len(out)
    out += (f"{stream_number} 0 obj\n<< /Type /ObjStm /N {len(objects)} /First {len(index)} /Filter /FlateDecode "
            f"/Length {len(packed)} >>\nstream\n").encode() + packed + b"\nendstream\nendobj\n"
    xref_offset = len(out)
    rows = struct.pack(">BIH", 0, 0, 65535)  # object 0: free; 1…: in the object stream; then the two streams
    rows += b"".join(struct.pack(">BIH", 2, stream_number, position) for position in range(len(objects)))
    rows += struct.pack(">BIH", 1, stream_offset, 0) + struct.pack(">BIH", 1, xref_offset, 0)
    xref = zlib.compress(rows)
    out += (f"{xref_number} 0 obj\n<< /Type /XRef /Size {xref_number + 1} /W [1 4 2] /Root 1 0 R "
            f"/Filter /FlateDecode /Length {len(xref)} >>\nstream\n").encode() + xref + b"\nendstream\nendobj\n"
    out += f"startxref\n{xref_offset}\n%%EOF\n".encode()
    return bytes(out)


async def mention_with_files(harness: Harness, user: str, text: str, files: list[dict[str, Any]], *,
                             thread_ts: str | None = None) -> str:
    ts = harness.slack.next_ts()
    full = f"<@{harness.slack.bot_user_id}> {text}".rstrip()
    harness.slack.add_message("C0001", ts, full, user=user, thread_ts=thread_ts, files=files)
    event = {"type": "app_mention", "user": user, "text": full, "ts": ts, "channel": "C0001", "event_ts": ts,
             "files": files}
    if thread_ts:
        event["thread_ts"] = thread_ts
    await harness.send_event(event)
    return ts


async def ready(harness: Harness, role: Role = Role.USER) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", role)


def last_content(harness: Harness) -> list[dict[str, Any]]:
    return harness.anthropic.last_body()["messages"][-1]["content"]


async def test_an_image_a_pdf_and_a_text_file_reach_claude_as_content_blocks(harness: Harness) -> None:
    await ready(harness)
    image, document = png(), pdf(3)
    files = [harness.slack.add_file("F1", "chart.png", "image/png", image),
             harness.slack.add_file("F2", "report.pdf", "application/pdf", document),
             harness.slack.add_file("F3", "data.csv", "text/csv", b"a,b\n1,2\n")]
    await mention_with_files(harness, "U1", "What do these show?", files)
    (record,) = await harness.settled_records(1)
    blocks = last_content(harness)
    assert [b["type"] for b in blocks] == ["image", "document", "text", "text"]
    assert blocks[0]["source"] == {"type": "base64", "media_type": "image/png",
                                   "data": base64.b64encode(image).decode()}
    assert base64.b64decode(blocks[1]["source"]["data"]) == document and blocks[1]["title"] == "report.pdf"
    assert blocks[2]["text"] == '<file name="data.csv">\na,b\n1,2\n</file>'
    # the files make the prompt long enough to cache: the breakpoint is on the turn's last block
    assert blocks[3] == {"type": "text", "text": "What do these show?", "cache_control": {"type": "ephemeral"}}
    sent = record.input_tokens + record.cache_write_tokens + record.cache_read_tokens  # long enough to be cached
    assert record.outcome == "ok" and sent >= 1_000 + 3 * 1_500  # the fake charges files
    assert {d["token"] for d in harness.slack.file_downloads} == {BOT_TOKEN}
    assert harness.ephemerals_for("U1") == []


async def test_a_file_only_message_is_a_question_and_earlier_thread_files_come_newest_first(harness: Harness) -> None:
    await ready(harness)
    old = [harness.slack.add_file("F1", "old.txt", "text/plain", b"first notes")]
    root = await mention_with_files(harness, "U1", "keep these", old)
    await harness.settled_records(1)
    new = [harness.slack.add_file("F2", "new.md", "text/markdown", b"# second")]
    await mention_with_files(harness, "U1", "", new, thread_ts=root)
    await harness.settled_records(2)
    blocks = last_content(harness)
    assert [b["text"].split("\n")[0] for b in blocks[:2]] == ['<file name="new.md">', '<file name="old.txt">']
    assert blocks[-1]["text"].endswith("Please look at the attached files.")


async def test_files_that_cannot_be_sent_are_named_with_their_reason(harness: Harness) -> None:
    await ready(harness)
    files = [harness.slack.add_file("F1", "secret.png", "image/png", png(), readable=False),
             harness.slack.add_file("F2", "huge.png", "image/png", png(padding=10), size=IMAGE_MAX_BYTES + 1),
             harness.slack.add_file("F3", "fake.png", "image/png", b"MZ\x90\x00 not an image at all"),
             harness.slack.add_file("F4", "setup.exe", "application/x-msdownload", b"MZ"),
             harness.slack.add_file("F5", "fine.png", "image/png", png())]
    await mention_with_files(harness, "U1", "look", files)
    (record,) = await harness.settled_records(1)
    (notice,) = await harness.told("U1")
    lines = notice["text"].split("\n")
    assert lines[0] == "Not sent to Claude:" and len(lines) == 5
    assert lines[1].startswith("• `secret.png`: Slack answered with a login page")
    assert lines[2].startswith("• `huge.png`: images may be up to 3.93 MB")
    assert lines[3] == "• `fake.png`: its content is not a PNG, JPEG, GIF or WebP image."
    assert lines[4].startswith("• `setup.exe`: Claude reads images")
    assert [b["type"] for b in last_content(harness)] == ["image", "text"] and record.outcome == "ok"
    assert "F2" not in {d["file"] for d in harness.slack.file_downloads}  # too large: never downloaded
    assert "F4" not in {d["file"] for d in harness.slack.file_downloads}


async def test_at_most_five_files_and_100_pdf_pages_go_with_one_question(harness: Harness) -> None:
    await ready(harness)
    files = [harness.slack.add_file(f"F{i}", f"part{i}.pdf", "application/pdf", pdf(30)) for i in range(6)]
    await mention_with_files(harness, "U1", "summarise", files)
    await harness.settled_records(1)
    assert [b["type"] for b in last_content(harness)] == ["document"] * 3 + ["text"]  # 90 pages of 100
    (notice,) = await harness.told("U1")
    assert "`part3.pdf`: PDFs may have 100 pages in all per question; this one has 30." in notice["text"]
    assert "`part5.pdf`: PDFs may have 100 pages" in notice["text"]


async def test_a_role_without_attachments_sends_the_text_alone(harness: Harness) -> None:
    await ready(harness)
    async with harness.sessions.begin() as session:
        await session.execute(update(RolePolicyRow).where(RolePolicyRow.role == "user").values(attachments=False))
    files = [harness.slack.add_file("F1", "chart.png", "image/png", png())]
    await mention_with_files(harness, "U1", "and this?", files)
    await harness.settled_records(1)
    assert last_content(harness) == "and this?" and harness.slack.file_downloads == []
    (notice,) = await harness.told("U1")
    assert "`chart.png`: your role *user* may not send files to Claude." in notice["text"]


async def test_policy_set_attachments_off_is_audited_and_shown(harness: Harness) -> None:
    harness.slack.add_user("UOWNER")
    await harness.grant("UOWNER", Role.OWNER)
    answer = await harness.command("UOWNER", "/claude-admin", "policy set user attachments off")
    assert ":warning:" not in answer["text"]
    shown = await harness.command("UOWNER", "/claude-admin", "policy user")
    assert "no files" in str(shown)
    bad = await harness.command("UOWNER", "/claude-admin", "policy set user attachments maybe")
    assert "attachments must be `on` or `off`" in str(bad)
    audit = await harness.audit()
    assert [(a.action, a.target) for a in audit if a.action == "policy.set"] == [("policy.set", "user")]


async def test_a_dm_with_an_image_is_answered_in_its_thread(harness: Harness) -> None:
    await ready(harness)
    files = [harness.slack.add_file("F1", "photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 64)]
    ts = harness.slack.next_ts()
    harness.slack.add_message("DU1", ts, "", user="U1", files=files)
    await harness.send_event({"type": "message", "channel_type": "im", "channel": "DU1", "user": "U1", "text": "",
                              "ts": ts, "event_ts": ts, "files": files, "subtype": "file_share"})
    (record,) = await harness.settled_records(1)
    assert record.surface == "dm" and last_content(harness)[0]["source"]["media_type"] == "image/jpeg"
    await eventually(lambda: harness.slack.posted_texts("DU1"))


def test_the_input_estimate_is_an_upper_bound_counting_files() -> None:
    messages = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": base64.b64encode(pdf(4)).decode()}},
        {"type": "text", "text": "question"}]}]
    estimate = input_tokens_bound("system", messages)
    assert estimate >= IMAGE_MAX_TOKENS + 4 * PDF_PAGE_TOKENS + text_tokens_bound("question")
    code = "def f(x):\n    return {k: v for k, v in x.items() if v}\n" * 50
    assert text_tokens_bound(code) >= len(code) // 3  # code: about three characters a token at worst
    cjk = "東京都の天気予報を教えてください" * 20
    assert text_tokens_bound(cjk) >= len(cjk)  # CJK: about a token a character at worst


async def test_downloads_of_the_whole_process_share_one_memory_cap() -> None:
    import asyncio

    import pytest

    from bot.slack.files import DownloadMemory, FileRefused

    memory = DownloadMemory(cap=100)
    await memory.reserve(60)
    with pytest.raises(FileRefused, match="too many files are being read right now"):
        await memory.reserve(60, wait=0.05)
    waiting = asyncio.create_task(memory.reserve(60, wait=5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await memory.release(60)
    await waiting  # room freed: the waiting download goes ahead
    assert memory.in_use == 60


class OtherHost:
    """A web server on another port of 127.0.0.1 (an external file's host, or the metrics page of something on
    this machine): it records every request and whether it carried an Authorization header."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> OtherHost:
        async def serve(request: web.Request) -> web.Response:
            self.requests.append({"path": request.path, "authorization": request.headers.get("Authorization")})
            if request.path == "/metrics":
                return web.Response(text="claude_gate_answers_total 12\nINTERNAL METRICS PAGE\n")
            return web.Response(text="EXTERNAL FILE CONTENT\n")

        app = web.Application()
        app.router.add_get("/{tail:.*}", serve)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def test_the_token_goes_only_to_slacks_file_host_and_other_files_are_named(harness: Harness) -> None:
    await ready(harness)
    other = await OtherHost().start()
    try:
        remote = harness.slack.add_file("F1", "design.pdf", "application/vnd.slack-remote", b"", filetype="pdf")
        remote.update(mode="external", is_external=True, size=0, url_private=f"{other.base_url}/design.pdf")
        elsewhere = harness.slack.add_file("F2", "notes.txt", "text/plain", b"x")  # looks hosted, points away
        elsewhere["url_private"] = f"{other.base_url}/notes.txt"
        metrics = harness.slack.add_file("F3", "metrics.txt", "text/plain", b"x" * 64)  # loopback: SSRF
        metrics["url_private"] = f"{other.base_url}/metrics"
        flagged = harness.slack.add_file("F4", "sheet.csv", "text/csv", b"a,b\n")  # on Slack's host, but remote
        flagged["is_external"] = True
        fine = harness.slack.add_file("F5", "fine.txt", "text/plain", b"hosted by Slack")
        await mention_with_files(harness, "U1", "read these", [remote, elsewhere, metrics, flagged, fine])
        (record,) = await harness.settled_records(1)
        assert other.requests == []  # not fetched at all: no token, no request, no redirect
        (notice,) = await harness.told("U1")
        lines = notice["text"].split("\n")
        outside = "it is stored outside Slack (127.0.0.1), and I read only files uploaded to Slack."
        assert lines[1:] == [f"• `design.pdf`: {outside}", f"• `notes.txt`: {outside}",
                             f"• `metrics.txt`: {outside}", f"• `sheet.csv`: {outside}"]
        sent = str(harness.anthropic.last_body())
        assert "hosted by Slack" in sent and "INTERNAL METRICS" not in sent and "EXTERNAL FILE" not in sent
        assert [d["file"] for d in harness.slack.file_downloads] == ["F5"] and record.outcome == "ok"
    finally:
        await other.close()


async def test_no_redirect_off_slacks_file_host_is_followed(harness: Harness) -> None:
    await ready(harness)
    other = await OtherHost().start()
    try:
        target = harness.slack.add_file("F9", "moved.txt", "text/plain", b"moved within Slack")
        away = harness.slack.add_file("F1", "away.txt", "text/plain", b"x", redirect_to=f"{other.base_url}/metrics")
        within = harness.slack.add_file("F2", "within.txt", "text/plain", b"x", redirect_to=target["url_private"])
        await mention_with_files(harness, "U1", "read these", [away, within])
        await harness.settled_records(1)
        assert other.requests == []
        (notice,) = await harness.told("U1")
        assert notice["text"].split("\n")[1:] == [
            "• `away.txt`: Slack redirected me to 127.0.0.1 for it, and I send my Slack token only to Slack's file "
            "host."]
        sent = str(harness.anthropic.last_body())
        assert "moved within Slack" in sent and "INTERNAL METRICS" not in sent  # a hop on Slack's host is followed
        assert [d["file"] for d in harness.slack.file_downloads] == ["F1", "F2", "F9"]
    finally:
        await other.close()


def test_the_file_hosts_are_slacks_and_the_api_urls_origin() -> None:
    from bot.slack.files import file_hosts, origin_of

    public = file_hosts("https://slack.com/api/")
    assert origin_of("https://files.slack.com/files-pri/T1-F1/a.png") in public
    for url in ("http://files.slack.com/x", "https://files.slack.com:8443/x", "https://files.slack.com.evil.io/x",
                "https://user@files.slack.com/x", "http://127.0.0.1:9100/metrics", "http://169.254.169.254/latest",
                "file:///etc/passwd", "files.slack.com/x", "http://[::1"):
        assert origin_of(url) not in public, url
    gov = file_hosts("https://slack-gov.com/api/")
    assert origin_of("https://files.slack-gov.com/files-pri/x") in gov and origin_of("https://slack-gov.com/x") in gov
    test = file_hosts("http://127.0.0.1:4321/api/")
    assert origin_of("http://127.0.0.1:4321/files-pri/x") in test and origin_of("http://127.0.0.1:4322/x") not in test


RAW_PAGE_OBJECTS = re.compile(rb"/Type\s*/Page(?![A-Za-z])")  # what the bot used to count


async def test_pdf_pages_are_counted_as_a_reader_counts_them() -> None:
    from bot.slack.files import pdf_pages

    modern = pdf_in_object_streams(100)
    assert len(RAW_PAGE_OBJECTS.findall(modern)) == 0  # the pages are inside the compressed object stream
    assert await pdf_pages(modern) == 100 and await pdf_pages(pdf(7)) == 7
    assert await pdf_pages(b"%PDF-1.7\n" + b"\x00" * 64) is None  # cannot be parsed: the caller assumes the limit
    assert await pdf_pages(pdf_in_object_streams(2_000), timeout=0) is None  # not counted in time: the same


def test_a_pdf_whose_pages_are_unknown_counts_as_the_limit() -> None:
    from bot.domain.files import FileBudget, SlackFile, content_block

    budget = FileBudget()
    document = SlackFile("F1", "scan.pdf", "application/pdf", "pdf", 100, "https://files.slack.com/x")
    block, _ = content_block(document, b"%PDF-1.7 damaged", budget, pages=None)
    assert block is not None and budget.pdf_pages == 0  # sent, and it took every page of the question
    block, reason = content_block(document, b"%PDF-1.7 damaged", FileBudget(pdf_pages=99), pages=None)
    assert block is None and reason.startswith("I could not count its pages, so it counts as 100")
    assert input_tokens_bound("", [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": ""}}]}]
    ) >= 100 * PDF_PAGE_TOKENS  # a document block whose pages nobody counted: the limit


async def test_a_150_page_pdf_in_object_streams_is_not_sent(harness: Harness) -> None:
    await ready(harness)
    files = [harness.slack.add_file("F1", "manual.pdf", "application/pdf", pdf_in_object_streams(150)),
             harness.slack.add_file("F2", "notes.txt", "text/plain", b"short notes")]
    await mention_with_files(harness, "U1", "summarise", files)
    (record,) = await harness.settled_records(1)
    (notice,) = await harness.told("U1")
    assert "`manual.pdf`: PDFs may have 100 pages in all per question; this one has 150." in notice["text"]
    assert [b["type"] for b in last_content(harness)] == ["text", "text"] and record.outcome == "ok"


async def test_a_100_page_pdf_in_object_streams_is_reserved_as_100_pages(harness: Harness) -> None:
    for user, role in (("UADMIN", Role.ADMIN), ("U1", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    assert ":white_check_mark:" in (await harness.command("UADMIN", "/claude-admin",
                                                          "budget set <@U1> daily 0.10"))["text"]
    document = pdf_in_object_streams(100)
    files = [harness.slack.add_file("F1", "report.pdf", "application/pdf", document)]
    await mention_with_files(harness, "U1", "summarise", files)
    (record,) = await harness.settled_records(1)
    # its reservation bounds the 100 pages Anthropic counts (150,000 tokens here, $0.15 to $0.19): it does not fit
    assert record.refusal_reason == "budget_exhausted" and record.cost_micros == 0
    assert harness.anthropic.message_requests() == []
    async with harness.sessions() as session:
        spent = (await session.scalars(select(SpendCounter.micros).where(SpendCounter.scope == "user:U1",
                                                                         SpendCounter.period == "day"))).all()
    assert sum(spent) <= 100_000  # the $0.10 budget is not passed
    harness.clock.advance(86_400)
    await harness.command("UADMIN", "/claude-admin", "budget set <@U1> daily 1")  # room for it: it is sent
    await mention_with_files(harness, "U1", "summarise", files)
    second = (await harness.settled_records(2))[-1]
    assert second.outcome == "ok" and second.input_estimate >= 100 * PDF_PAGE_TOKENS
    assert second.input_tokens + second.cache_write_tokens + second.cache_read_tokens >= 150_000
    assert second.cost_micros <= second.reserved_micros <= 1_000_000


async def test_one_question_reads_at_most_seven_files_however_many_are_mislabelled(harness: Harness) -> None:
    await ready(harness)
    root = harness.slack.next_ts()
    fakes = [harness.slack.add_file(f"F{n:02d}", f"photo{n:02d}.png", "image/png", b"MZ not an image")
             for n in range(40)]
    harness.slack.add_message("C0001", root, "my photos", user="U1", files=fakes[:20])
    harness.slack.add_message("C0001", harness.slack.next_ts(), "more", user="U1", thread_ts=root, files=fakes[20:])
    good = [harness.slack.add_file("G1", "real.png", "image/png", png())]
    await mention_with_files(harness, "U1", "which of these are sharp?", good, thread_ts=root)
    (record,) = await harness.settled_records(1)
    assert len(harness.slack.file_downloads) == 7  # MAX_FILES + 2, not 41
    assert [b["type"] for b in last_content(harness)] == ["image", "text"] and record.outcome == "ok"
    (notice,) = await harness.told("U1")
    assert "I read at most 7 files for one question, the newest first, and this one came after them." in notice["text"]
    assert notice["text"].endswith("• …and 30 more.")  # 6 not images, 34 not read: 10 lines shown


@pytest.mark.parametrize("policy", ["block", "redact"])
async def test_a_credential_in_a_file_name_does_not_reach_claude(harness_factory, policy: str) -> None:
    harness = await harness_factory(secret_policy=policy)
    await ready(harness)
    key = "sk-ant-api03-" + "Zq7" * 12 + "AbCd"
    files = [harness.slack.add_file("F1", f"deploy {key}.pdf", "application/pdf", pdf(2)),
             harness.slack.add_file("F2", f"env {key}.txt", "text/plain", b"notes")]
    await mention_with_files(harness, "U1", "what is in these?", files)
    (record,) = await harness.settled_records(1)
    body = harness.anthropic.last_body()
    assert key not in str(body) and key[:24] not in str(body)
    document, text = last_content(harness)[:2]
    assert document["title"] == "deploy [redacted: Anthropic API key].pdf"
    assert text["text"].startswith('<file name="env [redacted: Anthropic API key].txt">')
    # like a file's content, a file's name is redacted, not refused: it may be someone else's, shared earlier
    assert record.outcome == "ok"


def test_a_file_slack_lists_as_empty_is_not_fetched() -> None:
    from bot.domain.files import FileBudget, refusal_before_download, slack_file

    hosted = slack_file({"id": "F1", "name": "a.txt", "mimetype": "text/plain", "size": 0, "mode": "hosted",
                         "url_private": "https://files.slack.com/files-pri/T1-F1/a.txt"})
    assert hosted is not None and refusal_before_download(hosted, FileBudget()) == "Slack lists it as empty (0 bytes)."
