"""The SDK formats the Date header with locale-dependent strftime; QingStorRemote must still sign
valid requests in a process whose LC_TIME is German (a real locale compiled with localedef)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from remote_support import Target

CHILD = textwrap.dedent(
    """
    import hashlib, base64, io, locale, os, sys, time
    locale.setlocale(locale.LC_ALL, "")
    from qingstor.sdk.utils.helper import current_time
    sunday = time.gmtime(3 * 86400)  # 1970-01-04 was a Sunday
    assert time.strftime("%a", sunday) != "Sun", "locale not active"
    print("sdk_date=" + current_time())
    from qsyncd.remote.qingstor import QingStorRemote
    env = os.environ
    remote = QingStorRemote(endpoint=env["T_ENDPOINT"], zone=env["T_ZONE"], bucket=env["T_BUCKET"],
                            access_key_id=env["T_AKID"], secret_access_key=env["T_SECRET"])
    key = env["T_KEY"]
    data = b"locale-proof"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    print("etag=" + remote.put(key, io.BytesIO(data), len(data), md5))
    print("size=" + str(remote.head(key).size))
    remote.close()
    capture = QingStorRemote(endpoint=env["T_CAPTURE"], zone="", bucket="capture-bucket",
                             access_key_id="AKID", secret_access_key="x")
    capture.put("k", io.BytesIO(data), len(data), md5)
    capture.close()
    """
)


@pytest.fixture(scope="module")
def german_locale(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled de_DE.UTF-8 locale directory usable through LOCPATH."""
    localedef = shutil.which("localedef")
    if localedef is None or not Path("/usr/share/i18n/locales/de_DE").exists():
        pytest.skip("localedef or the de_DE locale source is not installed")
    root = tmp_path_factory.mktemp("locale")
    subprocess.run(
        [localedef, "-i", "de_DE", "-f", "UTF-8", str(root / "de_DE.UTF-8")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return root


RFC1123 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d GMT"
)


@pytest.fixture
def header_capture() -> Iterator[tuple[str, list[str]]]:
    """A bare HTTP server answering PUT with 201 + ETag and recording each request's Date header
    (the emulator parses dates leniently, so this is where the header itself is checked)."""
    dates: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            dates.append(self.headers.get("Date", ""))
            self.send_response(201)
            self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", dates
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_put_and_head_work_under_a_german_lc_time(
    target: Target, german_locale: Path, header_capture: tuple[str, list[str]]
) -> None:
    """With LC_ALL=de_DE.UTF-8 active the SDK's own Date is German, yet the Date sent is English
    RFC 1123 and put/head succeed."""
    capture_url, dates = header_capture
    env = dict(os.environ, LOCPATH=str(german_locale), LC_ALL="de_DE.UTF-8")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    key = target.key("locale")
    env.update(
        T_ENDPOINT=target.endpoint,
        T_ZONE=target.zone,
        T_BUCKET=target.bucket,
        T_AKID=target.access_key_id,
        T_SECRET=target.secret_access_key,  # via env, not argv (argv is world-readable)
        T_KEY=key,
        T_CAPTURE=capture_url,
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == proc.returncode, proc.stderr[-2000:]
    lines = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    english_days = ("Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,")
    assert not lines["sdk_date"].startswith(english_days)  # the trap is really armed
    assert "12" == lines["size"]
    assert 1 == len(dates)
    assert RFC1123.fullmatch(dates[0]), dates[0]
    info = target.remote().head(key)
    assert info is not None and lines["etag"] == info.etag
