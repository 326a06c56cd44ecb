"""A real DICOMweb server for tests: Orthanc with its DICOMweb plugin, on loopback.

``running_orthanc(folder)`` writes a configuration (free HTTP and DICOM ports,
storage in ``folder``, the DICOMweb plugin enabled, no authentication),
starts ``Orthanc``, waits for ``/system`` and stops it on exit. Files are
uploaded with ``upload`` (POST /instances, Orthanc's REST API), never through
lazydicom. Orthanc's own log (``verbose=True``) lists every request it serves.

Nothing here imports ``lazydicom``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_REQUEST = re.compile(r"HttpServer\.cpp:\d+\] \(http\) ((?:GET|POST|PUT|DELETE|HEAD) \S+)")
_PLUGIN_PLACES = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")


def orthanc_available() -> bool:
    return shutil.which("Orthanc") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _plugins() -> list[str]:
    found = [p for p in _PLUGIN_PLACES if Path(p).is_dir()
             and any("DicomWeb" in f.name for f in Path(p).iterdir())]
    if not found:
        raise RuntimeError("the Orthanc DICOMweb plugin is not installed "
                           "(apt-get install orthanc-dicomweb)")
    return found[:1]


def basic_auth(users: dict[str, str]) -> dict[str, str]:
    """The Authorization header of the first user (HTTP Basic)."""
    if not users:
        return {}
    user, password = next(iter(users.items()))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _request(url: str, users: dict[str, str] | None, *, data: bytes | None = None,
             method: str = "GET", headers: dict[str, str] | None = None
             ) -> urllib.request.Request:
    return urllib.request.Request(url, data=data, method=method,
                                  headers={**(headers or {}), **basic_auth(users or {})})


@dataclass
class Orthanc:
    """A running Orthanc: its REST root and its DICOMweb root."""

    rest: str
    process: subprocess.Popen
    log: Path
    users: dict[str, str]

    @property
    def dicomweb(self) -> str:
        """The DICOMweb service root as lazydicom opens it."""
        return "dicomweb+" + self.rest + "/dicom-web"

    def upload(self, files: Iterable[str | os.PathLike]) -> int:
        """POST each file to /instances; return the number stored."""
        n = 0
        for f in files:
            data = Path(f).read_bytes()
            req = _request(self.rest + "/instances", self.users, data=data, method="POST",
                           headers={"Content-Type": "application/dicom"})
            with urllib.request.urlopen(req, timeout=30) as r:
                json.loads(r.read())
            n += 1
        return n

    def delete_series(self, series_uid: str) -> None:
        """Delete a series by its SeriesInstanceUID (Orthanc's /tools/lookup)."""
        req = _request(self.rest + "/tools/lookup", self.users, data=series_uid.encode(),
                       method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            for found in json.loads(r.read()):
                if found["Type"] == "Series":
                    delete = _request(self.rest + found["Path"], self.users, method="DELETE")
                    urllib.request.urlopen(delete, timeout=30).close()

    def requests(self) -> list[str]:
        """The HTTP requests Orthanc logged so far (method and URI), oldest first."""
        # e.g. "I1203 01:53:44.418948 HttpServer.cpp:1244] (http) GET /dicom-web/studies/..."
        return _REQUEST.findall(self.log.read_text(errors="replace"))


@contextmanager
def running_orthanc(folder: str | os.PathLike, *, verbose: bool = True,
                    users: dict[str, str] | None = None) -> Iterator[Orthanc]:
    """Start Orthanc with a fresh configuration and storage in ``folder``.

    ``verbose`` logs every HTTP request (see ``Orthanc.requests``); ``users``
    turns on HTTP Basic authentication with these user names and passwords.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    http = _free_port()
    config = {
        "Name": "lazydicom-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": http,
        "DicomPort": _free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": bool(users),
        "RegisteredUsers": users or {},
        "HttpTimeout": 60,
        "Plugins": _plugins(),
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                     "Host": f"127.0.0.1:{http}"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = folder / "orthanc.log"
    args = ["Orthanc", str(folder / "orthanc.json")] + (["--verbose"] if verbose else [])
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    rest = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({process.returncode}):\n{log.read_text()}")
            try:
                with urllib.request.urlopen(_request(rest + "/system", users), timeout=2) as r:
                    if json.loads(r.read()).get("Version"):
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not start in 30 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield Orthanc(rest, process, log, users or {})
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
