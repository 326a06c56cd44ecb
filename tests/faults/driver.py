"""A process for kill tests: does one lazydicom operation and SIGKILLs itself at a set point.

``python -m tests.faults.driver SPEC`` with SPEC a JSON object:

``root``
    the database folder;
``action``
    ``index`` (open: index or refresh), ``set_ndarray`` (write 7s into the
    first series along FlipAngle 1..6), ``zeros`` (a new series) or
    ``cache`` (open with a cache and leave a partial cache entry);
``kill``
    ``[target, n, when]``: SIGKILL this process ``before`` or ``after`` the
    n-th call of ``target`` (a dotted name, e.g. ``lazydicom.disk.atomic_write``),
    or null to run to the end.

Runs with dask's synchronous scheduler, so the n-th call is the same in
every run (the kill points are deterministic, not timed).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import warnings


def arm(target: str, n: int, when: str) -> None:
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:-1]:
            owner = getattr(owner, name)
        break
    attr = parts[-1]
    original = getattr(owner, attr)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        out = original(*args, **kwargs)
        if calls[0] == n and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    setattr(owner, attr, wrapper)


def main() -> None:
    spec = json.loads(sys.argv[1])
    warnings.simplefilter("ignore")
    import dask
    import numpy as np

    import lazydicom

    dask.config.set(scheduler="sync")
    if spec.get("kill"):
        arm(*spec["kill"])
    root = spec["root"]
    action = spec["action"]
    if action == "index":
        lazydicom.open(root, progress=False, workers=spec.get("workers", 1))
    elif action == "set_ndarray":
        series = lazydicom.open(root, progress=False).series()[0]
        values = np.full((4, 3, 6), 7, np.uint16)
        series.set_ndarray(values, coords={"FlipAngle": [1, 2, 3, 4, 5, 6]})
    elif action == "zeros":
        lazydicom.open(root, progress=False).zeros((4, 3, 5), SeriesDescription="killed")
    elif action == "cache":
        db = lazydicom.open(root, progress=False, cache=True)
        entry = os.path.join(root, ".lazydicom", "cache.zarr", "ab", "abcdef")
        os.makedirs(entry, exist_ok=True)
        with open(os.path.join(entry, "zarr.0123456789abcdef.partial"), "wb") as f:
            f.write(b"half an entry")
        assert db.cache is not None
        os.kill(os.getpid(), signal.SIGKILL)
    print("done", flush=True)


if __name__ == "__main__":
    main()
