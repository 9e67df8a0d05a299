"""Results remember: stored metrics with their provenance.

A record is ``results/<chapter>/<name>__<profile>__<digest>.json`` (metrics, config, commit, device,
times) plus an optional ``.npz`` beside it for arrays. Both are written atomically (a temporary
file, then ``os.replace``), the ``.npz`` first, so the ``.json`` marks a complete record: a killed
writer leaves the previous record or none, never half a file.

Each ``.json`` carries ``digest``, a SHA-256 of its metrics, config and the ``.npz``'s own digest:
a record whose numbers were edited, whose arrays belong to another write, or that is not a JSON
object at all is refused with a warning naming the file and treated as missing (the experiment
runs again). ``tools/add_record_digests.py`` adds the digest to records written before it existed.

``load_or_run`` is the one call a chapter makes. It returns a stored record when one may be
trusted, else runs the experiment and stores it:

* ``full`` and ``reference`` records are reused whatever code wrote them (they are the expensive
  runs committed with the book, GPU and CPU; each carries the commit that made it);
* ``smoke``/``quick`` records are reused only if ``bn_utils``' source is unchanged since they were
  written (they are cheap; reusing stale ones would show numbers the code no longer gives);
* with ``prefer_stored=True`` a chapter executed at the unmodified ``quick`` profile shows the
  best stored record instead (:func:`best_stored`: ``full``, else ``reference``), and says so in
  the caption. Only a record of exactly that profile's current config stands in: one made with
  other values (an edited profile, a reader's override) is never shown.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import io
import json
import math
import os
import platform
import socket
import subprocess
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

try:
    import fcntl
except ImportError:      # Windows: no file locks; a run is then not guarded against a second trainer
    fcntl = None

import numpy as np

from ..files import UnreadableFile, check_npz_sizes, read_capped
from .profiles import PROFILES, Config
from ..runtime import atomic_write_bytes, default_device

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = PACKAGE_DIR.parent


def results_dir() -> Path:
    """Return the results root: ``BN_RESULTS_DIR``, else ``results/`` of the checkout or cwd."""
    env = os.environ.get("BN_RESULTS_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if (REPO_DIR / "pyproject.toml").exists():
        return REPO_DIR / "results"
    return Path.cwd() / "results"


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """Return a hash of bn_utils' source files: cheap records are trusted only under the same code."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE_DIR)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def git_commit() -> str:
    """Return the checkout's commit (``+dirty`` if it has uncommitted changes), or ``unknown``."""
    try:
        run = functools.partial(subprocess.run, cwd=REPO_DIR, capture_output=True, text=True,
                                timeout=10)
        sha = run(["git", "rev-parse", "--short=12", "HEAD"]).stdout.strip()
        if not sha:
            return "unknown"
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no", "--", "bn_utils"])
        return sha + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_description(device: Any = None) -> str:
    """Return a human name of the device the runs use, e.g. ``cpu (2 threads)`` or the GPU model."""
    import torch

    dev = torch.device(device) if device is not None else default_device()
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}"
    n = torch.get_num_threads()
    return f"cpu: {platform.processor() or platform.machine()} ({n} thread{'s' * (n != 1)})"


def record_meta(device: Any = None) -> dict:
    """Return where and with what a record was made: commit, code digest, device, versions."""
    import torch

    return {
        "commit": git_commit(),
        "code_digest": code_digest(),
        "device": device_description(device),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "host": socket.gethostname(),
    }


@dataclass
class Record:
    """One stored result: metrics (JSON), arrays (npz), the config and the provenance."""

    chapter: str
    name: str
    config: dict
    metrics: dict
    arrays: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def profile(self) -> str:
        """Return the profile the record was made with."""
        return self.config.get("profile", "custom")

    def __getitem__(self, key: str) -> Any:
        """Return a metric or an array by name."""
        if key in self.arrays:
            return self.arrays[key]
        return self.metrics[key]

    def caption(self) -> str:
        """Return one line saying where the numbers come from: profile, commit, device, date."""
        when = self.meta.get("finished", "")[:10]
        source = "stored" if self.meta.get("loaded") else "this run"
        runs = f"; {self.meta['runs']} runs stored so far" if "runs" in self.meta else ""
        return (f"{self.profile} profile ({source}: commit {self.meta.get('commit', '?')}, "
                f"{self.meta.get('device', '?')}, {when}{runs})")


def assembled_meta(metas: list[dict], runs: str) -> dict:
    """Return the provenance of a record assembled in memory from stored runs (their ``metas``):
    the commit and device of the run that finished last (and how many other commits made the
    rest), its finish, and ``runs`` ("16 of 21"), which the caption prints."""
    latest = max(metas, key=lambda m: m.get("finished", ""))
    others = len({m.get("commit", "?") for m in metas} - {latest.get("commit", "?")})
    commit = latest.get("commit", "?") + (f" (and {others} earlier)" if others else "")
    return {"commit": commit, "device": latest.get("device", "?"), "loaded": True,
            "finished": latest.get("finished", ""), "runs": runs}


def _paths(chapter: str, name: str, cfg: Config) -> tuple[Path, Path]:
    folder, stem = results_dir() / chapter, f"{name}__{cfg.profile}__{cfg.digest()}"
    # appended, not Path.with_suffix: a name with a dot ("dropout-0.05") must keep its digest
    return folder / f"{stem}.json", folder / f"{stem}.npz"


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and ±inf are not JSON; a diverged run says so in its own field
    return value


def save(chapter: str, name: str, cfg: Config, output: dict, *, meta: dict | None = None) -> Record:
    """Store ``output`` (NumPy arrays go to the npz, the rest to JSON) and return the record."""
    arrays = {k: np.asarray(v) for k, v in output.items() if isinstance(v, np.ndarray)}
    metrics = {k: v for k, v in output.items() if k not in arrays}
    json_path, npz_path = _paths(chapter, name, cfg)
    meta = {**record_meta(), **(meta or {})}
    meta.setdefault("finished", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    if arrays:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(npz_path, buf.getvalue())
        meta["arrays_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    doc = {"chapter": chapter, "name": name, "config": cfg.to_dict(), "meta": meta,
           "metrics": _to_jsonable(metrics), "arrays": sorted(arrays)}
    doc["digest"] = record_digest(json.loads(json.dumps(doc, allow_nan=False)))
    text = json.dumps(doc, indent=1, sort_keys=True, allow_nan=False)
    atomic_write_bytes(json_path, text.encode())
    return Record(chapter, name, doc["config"], doc["metrics"], arrays, meta, json_path)


def record_digest(doc: dict) -> str:
    """Return the SHA-256 of a stored record's metrics, config, names and arrays' digest (what
    ``read`` checks; the provenance in ``meta`` may be annotated freely)."""
    body = {k: doc.get(k) for k in ("chapter", "name", "config", "metrics", "arrays")}
    body["arrays_sha256"] = (doc.get("meta") or {}).get("arrays_sha256")
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _refuse(path: Path, why: str) -> None:
    warnings.warn(f"{path}: {why}; treated as missing (the experiment runs again)", stacklevel=4)


# A record's JSON is at most a few MB (the largest committed one is under 1 MB); its arrays at most
# a few hundred. Reads stop at these sizes, so a copied or planted file cannot exhaust memory.
MAX_JSON_BYTES = 64 << 20
MAX_ARRAYS_BYTES = 2 << 30
_FIELDS = {"chapter": str, "name": str, "config": dict, "metrics": dict, "meta": dict, "arrays": list}


def _no_constant(name: str):
    raise ValueError(f"holds {name}, which JSON does not have")


def _read_doc(json_path: Path) -> dict:
    """Return the parsed record at ``json_path``; raise ValueError saying why it is unusable (not
    a regular file, too large, not JSON, NaN, nested too deeply, missing or mistyped fields)."""
    try:
        doc = json.loads(read_capped(json_path, MAX_JSON_BYTES), parse_constant=_no_constant)
    except UnreadableFile:
        raise
    except RecursionError:
        raise ValueError("not readable JSON (nested too deeply to be a record)") from None
    except ValueError as err:
        raise ValueError(f"not readable JSON ({err})") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    wrong = [k for k, kind in _FIELDS.items() if not isinstance(doc.get(k), kind)]
    if wrong:
        raise ValueError(f"not a JSON object with a meta object and the fields of a record "
                         f"({', '.join(wrong)} missing or of the wrong type)")
    if not all(isinstance(a, str) for a in doc["arrays"]):
        raise ValueError("not a JSON object with a list of array names")
    return doc


def _identity(chapter: str, name: str, config: dict) -> str:
    """Return how a record is named: chapter/name (profile, config digest), as in its file name."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return f"{chapter}/{name} ({config.get('profile')}, config {digest})"


def _named_identity(json_path: Path) -> str | None:
    """Return the identity the record's path gives it (results/<chapter>/<name>__<profile>__<digest>.json)."""
    parts = json_path.name[: -len(".json")].split("__")
    if len(parts) != 3:
        return None
    return f"{json_path.parent.name}/{parts[0]} ({parts[1]}, config {parts[2]})"


def _checked_record(json_path: Path, doc: dict) -> Record | None:
    """Return the record ``doc`` read from ``json_path`` if it is the one its path names and
    matches its digest and arrays; else None and a warning naming the file."""
    npz_path = json_path.with_name(json_path.name[: -len(".json")] + ".npz")
    stored, named = _identity(doc["chapter"], doc["name"], doc["config"]), _named_identity(json_path)
    if named is not None and stored != named:
        # chapter, name and config are inside the digest: a record copied over another run's
        # file still matches its digest, but not the name it was copied to
        return _refuse(json_path, f"is the record of {stored} but its file name says {named} "
                                  "(copied over another run's record?)")
    try:
        matches = doc.get("digest") == record_digest(doc)
    except (ValueError, RecursionError):
        matches = False
    if not matches:
        what = "has no digest" if "digest" not in doc else "does not match its digest"
        return _refuse(json_path, f"{what} (its metrics were edited, or it predates digests: "
                                  "tools/add_record_digests.py)")
    arrays = {}
    if doc["arrays"]:
        try:
            blob = read_capped(npz_path, MAX_ARRAYS_BYTES)
            if hashlib.sha256(blob).hexdigest() != doc["meta"].get("arrays_sha256"):
                return _refuse(npz_path, "does not match its record's digest (edited, or from "
                                         "another write)")
            check_npz_sizes(blob, MAX_ARRAYS_BYTES)
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                arrays = {k: z[k] for k in doc["arrays"]}
        except (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile) as err:
            return _refuse(npz_path, f"not readable ({type(err).__name__}: {err})")
    meta = {**doc["meta"], "loaded": True}
    return Record(doc["chapter"], doc["name"], doc["config"], doc["metrics"], arrays, meta, json_path)


def _stored_doc(json_path: Path) -> dict | None:
    """Return the JSON document stored at ``json_path``; None if there is none, or if it cannot be
    read (then with a warning naming the file, :func:`_refuse`)."""
    if not os.path.lexists(json_path):
        return None
    try:
        return _read_doc(json_path)
    except ValueError as err:
        return _refuse(json_path, str(err))


def read(json_path: Path) -> Record | None:
    """Return the record stored at ``json_path`` whatever its config, or None if there is none;
    a broken, edited or non-object record, or one that is another run's (its chapter, name or
    config differ from what its file name says), gives None and a warning naming the file."""
    json_path = Path(json_path)
    doc = _stored_doc(json_path)
    return None if doc is None else _checked_record(json_path, doc)


def load(chapter: str, name: str, cfg: Config) -> Record | None:
    """Return the stored record of exactly this config, or None if there is none (another config
    with the same short hash is none too); a broken, edited or copied record warns, naming the file."""
    json_path, _ = _paths(chapter, name, cfg)
    doc = _stored_doc(json_path)
    if doc is None:
        return None
    if doc["config"] != cfg.to_dict():
        return None  # a record of another config with the same short hash is silently not ours
    return _checked_record(json_path, doc)


def _check_writable(chapter: str, name: str, cfg: Config) -> None:
    """Raise ValueError if a folder stands where this run's record is to be written (found now,
    not after the experiment has run)."""
    for path in _paths(chapter, name, cfg):
        if path.is_dir() and not path.is_symlink():
            raise ValueError(f"{path} is a folder, where this run's record is to be written: "
                             "move it away and run again")


# The one ranking of profiles, best first (the reverse of profiles.PROFILES, cheapest first). The
# best two are the committed runs: they stand in for a quick run and are kept across code changes.
RANK = tuple(reversed(PROFILES))
STORED_PROFILES = RANK[:2]


def _trusted(record: Record) -> bool:
    return record.profile in STORED_PROFILES or record.meta.get("code_digest") == code_digest()


def _may_stand_in(cfg: Config) -> bool:
    """Whether a stored record of another profile may stand in for ``cfg``: it is the unmodified
    ``quick`` profile and ``BN_USE_STORED`` is not 0."""
    return cfg.profile == "quick" and cfg.is_profile_default() \
        and os.environ.get("BN_USE_STORED", "1") != "0"


def best_stored(chapter: str, name: str, cfg: Config) -> Record | None:
    """Return the best stored record that may stand in for ``cfg`` (the ``full`` profile's, else
    the ``reference`` profile's, each of exactly that profile's current config), or None: when
    ``cfg`` is not the unmodified ``quick`` profile, when ``BN_USE_STORED=0``, or when none is stored."""
    if not _may_stand_in(cfg):
        return None
    for profile in STORED_PROFILES:
        stored = load(chapter, name, type(cfg).for_profile(profile))
        if stored is not None:
            return stored
    return None


def best_record(chapter: str, name: str, folder: Path | None = None) -> Record | None:
    """Return the stored record ``name`` of ``chapter`` (in ``folder``, default
    :func:`results_dir`) of the best profile that has one (:data:`RANK`; the newest of a profile
    first), whatever its config, or None: what the closing page reads."""
    folder = (folder or results_dir()) / chapter
    found = []
    for path in folder.glob(f"{name}__*.json"):
        profile = path.name[len(name) + 2:].split("__")[0]
        if profile in RANK:
            found.append((RANK.index(profile), -path.stat().st_mtime, path))
    for _, _, path in sorted(found):
        record = read(path)
        if record is not None:
            return record
    return None


def stand_in(chapter: str, name: str, cfg: Config,
             partial: Callable[[], Record | None] | None = None) -> Record | None:
    """Return the record that stands in for ``cfg`` where stored records are preferred: the best
    stored one (:func:`best_stored`), else (where one may stand in for ``cfg``) what ``partial()``
    assembles from the long runs stored so far; None when there is neither (:func:`load_or_run`
    then loads or runs ``cfg`` itself). Trains nothing."""
    stored = best_stored(chapter, name, cfg)
    if stored is not None:
        return stored
    return partial() if partial is not None and _may_stand_in(cfg) else None


def load_or_run(chapter: str, name: str, cfg: Config, fn: Callable[[Config], dict], *,
                prefer_stored: bool = False, partial: Callable[[], Record | None] | None = None,
                lock: bool = False) -> Record:
    """Return, with ``prefer_stored``, the record that stands in for ``cfg`` (:func:`stand_in`:
    the best stored one, else what ``partial()`` assembles from the long runs stored so far);
    else the trusted stored record of ``cfg``; else
    run ``fn(cfg)``, store its output and return the new record. With ``lock`` (a long run, which
    checkpoints), it trains only while no other process trains it (:func:`training_lock`, on the
    :func:`checkpoint_path` with the suffix ``.lock``)."""
    if prefer_stored:
        shown = stand_in(chapter, name, cfg, partial)
        if shown is not None:
            return _noted(shown)
    stored = load(chapter, name, cfg)
    if stored is not None and _trusted(stored):
        return _noted(stored)
    _check_writable(chapter, name, cfg)
    guard = (training_lock(checkpoint_path(chapter, name, cfg).with_suffix(".lock"),
                           _paths(chapter, name, cfg)[0]) if lock else contextlib.nullcontext())
    with guard:
        if lock:   # stored meanwhile by the process that held the lock (its warnings were given)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stored = load(chapter, name, cfg)
            if stored is not None and _trusted(stored):
                return _noted(stored)
        started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        t0 = time.perf_counter()
        output = fn(cfg)
        meta = {"started": started, "seconds": round(time.perf_counter() - t0, 3)}
        return _noted(save(chapter, name, cfg, output, meta=meta))


@contextlib.contextmanager
def training_lock(path: Path, record: Path | str = "this run"):
    """Hold an exclusive lock on the file ``path`` while a run trains (the operating system drops
    it if the process dies), so that two processes (a sweep and a chapter, say) never train,
    checkpoint and store the same run at once: the second fails at once with a RuntimeError naming
    ``record`` and the first one's process id."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                pid = f.read().strip() or "unknown"
                raise RuntimeError(f"{record}: another process (pid {pid}) is training this run now; "
                                   "wait until it stores its record (then it is reused) or stop that "
                                   "process and run again") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def _noted(record: Record) -> Record:
    """Append the record's path to the file named by ``BN_RECORD_LOG`` (how a sweep job learns
    which records its chapter wrote or reused); return the record."""
    log = os.environ.get("BN_RECORD_LOG")
    if log and record.path is not None:
        with open(log, "a") as f:
            f.write(f"{record.path}\n")
    return record


def is_trusted(json_path: Path | str) -> bool:
    """Return True if the record stored at ``json_path`` exists and ``load_or_run`` would reuse it:
    it passes :func:`read`'s checks (its identity is its file name's, it matches its digest and
    its arrays; else a warning naming the file) and its code or profile is trusted."""
    try:
        record = read(Path(json_path))
    except OSError:
        return False
    return record is not None and _trusted(record)


def checkpoint_path(chapter: str, name: str, cfg: Config) -> Path:
    """Return where a long run of ``cfg`` keeps its checkpoint (``train.fit(checkpoint=...)``);
    its lock (:func:`training_lock`) is the same path with the suffix ``.lock``."""
    json_path, _ = _paths(chapter, name, cfg)
    return json_path.parent / "checkpoints" / (json_path.name[: -len(".json")] + ".pt")
