"""A content-addressed cache of simulated rollouts, in Parquet files.

A cache *entry* holds the rollouts of one stimulus at one noise-parameter
point for one range of sample indices: one row per (sample, query) with the
columns ``sample, query, value, steps``. Its name is the SHA-256 of
everything that decides those numbers:

* the stimulus as canonical JSON (id, scene, query, interventions, metadata —
  the id matters because it is part of every rollout's seed);
* the noise parameters (:meth:`ipe.noise.NoiseParams.as_dict`) and the point
  key that seeds them (``0`` under common random numbers);
* the seed, the sample range ``[start, stop)``, the queries asked and whether
  rollouts stop early;
* the physics version (:func:`physics_version`): ipe's physics revision, a
  hash of the source of the modules that compute a rollout (scene, world,
  noise, queries, seeding) and the versions of pymunk, Chipmunk and NumPy.
  Any change to any of them gives new keys, so a stale entry is never served.

Entries live in ``<root>/physics-<tag>/<ab>/<key>.parquet`` where ``<tag>``
names the physics version, so entries of other versions can be listed and
cleared (``ipe cache info``, ``ipe cache clear --stale``). The root is
``$IPE_CACHE_DIR`` or ``$XDG_CACHE_HOME/ipe/simulations`` (default
``~/.cache/ipe/simulations``).

Safety
------
*Concurrent writers.* An entry is written to a temporary file in its final
directory and moved into place with :func:`os.replace`, which is atomic:
readers see no file or a complete one, and two processes writing the same
key write the same bytes.

*Corruption and forgery.* Every entry carries a keyed checksum of its data
(and its key, sample range and queries) in the Parquet metadata: an
HMAC-SHA256 under the cache's own secret, 32 random bytes kept in
``<root>/SECRET`` (mode 0600, made on first use, never inside an entry). A
file that does not parse, whose key or checksum does not match, or whose rows
are not the requested samples and queries is counted as corrupt, deleted and
recomputed; it is never served. So somebody who can write into a shared
cache directory but cannot read the secret cannot forge an entry that is
served. A secret file that others may read or write, that is not a plain
file, or that belongs to another user is refused with a one-line error.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import hmac
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError
from .fileio import optional_import
from .scenefile import stimulus_to_dict

#: Bump when a change outside the hashed modules changes what a rollout returns.
PHYSICS_REVISION = 2
#: Version of the entry layout (columns and metadata).
CACHE_FORMAT = 1
#: Modules whose source decides a rollout's numbers (hashed into the physics version).
PHYSICS_MODULES = ("ipe.scene", "ipe.world", "ipe._fast_step", "ipe.rollout", "ipe.geometry", "ipe.noise",
                   "ipe.queries", "ipe.seeding")

_META_PREFIX = b"ipe."


@functools.lru_cache(maxsize=None)
def physics_version() -> str:
    """The physics version string that is part of every cache key.

    ``ipe-physics-<revision>+src.<hash> pymunk-<v> chipmunk-<v> numpy-<v>``,
    where ``<hash>`` is a SHA-256 over the source files of
    :data:`PHYSICS_MODULES`. Two processes agree on it exactly when they would
    compute the same rollouts.
    """
    import pymunk

    h = hashlib.sha256()
    for name in PHYSICS_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:  # pragma: no cover - broken install
            raise RuntimeError(f"cannot find the source of {name}")
        h.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    chip = str(getattr(pymunk, "chipmunk_version", "?")).split("-")[0]
    return (f"ipe-physics-{PHYSICS_REVISION}+src.{h.hexdigest()[:12]} pymunk-{pymunk.version} "
            f"chipmunk-{chip} numpy-{np.__version__}")


def physics_tag(version: str | None = None) -> str:
    """A short name (12 hex digits) of a physics version, used as a directory name."""
    return hashlib.sha256((version or physics_version()).encode()).hexdigest()[:12]


def default_cache_dir() -> Path:
    """``$IPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ipe/simulations``, else ``~/.cache/ipe/simulations``."""
    env = os.environ.get("IPE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "ipe" / "simulations"


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


SECRET_NAME = "SECRET"
"""File name of a cache's secret (in its root directory)."""


def _secret_path(root: Path) -> Path:
    return root / SECRET_NAME


def load_secret(root: str | os.PathLike, create: bool = True) -> bytes | None:
    """The cache's HMAC secret from ``<root>/SECRET``; made (mode 0600) when missing and ``create``.

    Returns ``None`` when there is none and ``create`` is false. Raises a
    one-line :class:`~ipe.errors.InputError` when the file is not a plain file
    of this user with mode 0600, or does not hold 64 hex digits.
    """
    root = Path(root)
    p = _secret_path(root)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        if not create:
            return None
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".SECRET.", suffix=".tmp", dir=root)  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, p)  # never replaces a secret another process made a moment ago
            except FileExistsError:
                pass
        finally:
            _unlink(Path(tmp))
        st = os.lstat(p)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"cache secret {p}: not a plain file; remove it (entries are then recomputed)")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise InputError(f"cache secret {p}: belongs to another user; use a cache directory of your own "
                         "(--cache DIR or $IPE_CACHE_DIR)")
    if st.st_mode & 0o077:
        raise InputError(f"cache secret {p}: others may read or change it (mode {stat.S_IMODE(st.st_mode):04o}); "
                         f"run `chmod 600 {p}` if nobody else could have read it, else remove it")
    text = p.read_text(encoding="ascii", errors="replace").strip()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InputError(f"cache secret {p}: not 64 hex digits; remove it (entries are then recomputed)")
    return bytes.fromhex(text)


def _checksum(secret: bytes, key: str, start: int, stop: int, query_keys: Sequence[str], sample: np.ndarray,
              value: np.ndarray, steps: np.ndarray) -> str:
    h = hmac.new(secret, digestmod=hashlib.sha256)
    h.update(f"{key}\0{start}\0{stop}\0".encode())
    h.update("\x1f".join(query_keys).encode() + b"\0")
    h.update(np.ascontiguousarray(sample, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(value, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(steps, dtype="<i8").tobytes())
    return h.hexdigest()


class CorruptEntry(Exception):
    """An entry that does not parse or does not match its checksum, key or request."""


@dataclass
class CacheStats:
    """Counters of one :class:`SimulationCache` object (this process only)."""

    hits: int = 0
    misses: int = 0
    corrupt: int = 0
    writes: int = 0
    rollouts_read: int = 0
    rollouts_written: int = 0

    def __str__(self) -> str:
        text = f"{self.hits} hit(s), {self.misses} miss(es)"
        if self.corrupt:
            text += f", {self.corrupt} corrupt entr{'y' if self.corrupt == 1 else 'ies'} recomputed"
        return text


@dataclass
class CacheInfo:
    """What :meth:`SimulationCache.info` finds on disk."""

    root: Path
    physics_version: str
    entries: int = 0
    bytes: int = 0
    stale_entries: int = 0
    stale_bytes: int = 0
    temp_files: int = 0
    other_versions: dict[str, str] = field(default_factory=dict)
    corrupt: list[Path] | None = None

    def lines(self) -> list[str]:
        """Human-readable lines (for ``ipe cache info``)."""
        out = [f"cache: {self.root}", f"physics version: {self.physics_version}",
               f"entries: {self.entries} ({human_bytes(self.bytes)}) for this physics version"]
        if self.stale_entries or self.other_versions:
            out.append(f"stale entries: {self.stale_entries} ({human_bytes(self.stale_bytes)}) for "
                       f"{len(self.other_versions)} other physics version(s); `ipe cache clear --stale` removes them")
        if self.temp_files:
            out.append(f"unfinished temporary files: {self.temp_files}")
        if self.corrupt is not None:
            out.append(f"corrupt entries: {len(self.corrupt)}" + (" (they are recomputed when next used; "
                                                                  "`ipe cache clear` removes them)"
                                                                  if self.corrupt else ""))
        return out


def human_bytes(n: int) -> str:
    """``1234567`` → ``"1.2 MB"``."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


class SimulationCache:
    """Rollouts on disk, keyed by content (see the module docstring).

    Parameters
    ----------
    root:
        Cache directory; ``None`` uses :func:`default_cache_dir`.

    Notes
    -----
    ``stats`` counts the hits, misses, corrupt entries and writes made
    through this object.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"cache directory {self.root}: exists and is not a directory")
        self.version = physics_version()
        self.tag = physics_tag(self.version)
        self.stats = CacheStats()
        self._secret: bytes | None = None

    def secret(self, create: bool = True) -> bytes | None:
        """This cache's HMAC secret (see :func:`load_secret`), read once."""
        if self._secret is None:
            self._secret = load_secret(self.root, create=create)
        return self._secret

    def __repr__(self) -> str:
        return f"SimulationCache({str(self.root)!r})"

    # ------------------------------------------------------------------ keys

    @staticmethod
    def stimulus_text(stimulus) -> str:
        """Canonical JSON of a stimulus (compute once per stimulus, pass to :meth:`key`)."""
        return _canonical(stimulus_to_dict(stimulus))

    def key(self, stimulus_text: str, params, point_key: int, seed: int, start: int, stop: int,
            queries: Sequence, early_stop: bool) -> str:
        """The SHA-256 (hex) naming one entry.

        ``params`` is a :class:`~ipe.noise.NoiseParams` (all its fields count,
        through ``as_dict()``); ``queries`` are :class:`~ipe.scene.Query`
        objects or their keys.
        """
        qs = [q if isinstance(q, str) else _canonical(q.to_dict()) for q in queries]
        material = {
            "format": CACHE_FORMAT, "physics": self.version, "stimulus": stimulus_text,
            "params": {k: repr(float(v)) for k, v in params.as_dict().items()}, "point_key": int(point_key),
            "seed": int(seed), "samples": [int(start), int(stop)], "queries": qs, "early_stop": bool(early_stop),
        }
        return hashlib.sha256(_canonical(material).encode()).hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry ``key`` lives."""
        return self.root / f"physics-{self.tag}" / key[:2] / f"{key}.parquet"

    # ------------------------------------------------------------------ read

    def get(self, key: str, start: int, stop: int, query_keys: Sequence[str]
            ) -> tuple[np.ndarray, np.ndarray] | None:
        """The stored ``(values (n, n_queries), steps (n,))`` or ``None``.

        A corrupt entry is deleted, counted in ``stats.corrupt`` and reported
        as a miss.
        """
        p = self.path(key)
        try:
            data = p.read_bytes()
        except OSError:
            self.stats.misses += 1
            return None
        try:
            secret = self.secret()
        except OSError:  # no secret and none can be made (read-only cache): nothing can be trusted
            self.stats.misses += 1
            return None
        try:
            vals, steps = _decode(data, key, start, stop, list(query_keys), secret)
        except CorruptEntry:
            self.stats.corrupt += 1
            self.stats.misses += 1
            _unlink(p)
            return None
        self.stats.hits += 1
        self.stats.rollouts_read += len(steps)
        return vals, steps

    # ------------------------------------------------------------------ write

    def put(self, key: str, start: int, stop: int, query_keys: Sequence[str], values: np.ndarray,
            steps: np.ndarray, info: dict | None = None) -> Path:
        """Store one entry atomically (temporary file, then :func:`os.replace`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        query_keys = list(query_keys)
        n, nq = stop - start, len(query_keys)
        values = np.asarray(values, dtype=float).reshape(n, nq)
        steps = np.asarray(steps, dtype=np.int64).reshape(n)
        sample = np.repeat(np.arange(start, stop, dtype=np.int64), nq)
        value = values.reshape(-1)
        steps_rows = np.repeat(steps, nq)
        meta = {
            "key": key, "format": str(CACHE_FORMAT), "physics": self.version, "start": str(start),
            "stop": str(stop), "queries": json.dumps(query_keys),
            "checksum": _checksum(self._put_secret(), key, start, stop, query_keys, sample, value, steps_rows),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if info:
            meta["info"] = _canonical(info)
        table = pa.table({"sample": sample, "query": pa.array(query_keys * n, type=pa.string()),
                          "value": value, "steps": steps_rows})
        table = table.replace_schema_metadata({_META_PREFIX + k.encode(): v.encode() for k, v in meta.items()})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        payload = sink.getvalue().to_pybytes()
        p = self.path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._write_version_file()
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=p.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                os.replace(tmp, p)
            except BaseException:
                _unlink(Path(tmp))
                raise
        except OSError as exc:
            raise InputError(f"cannot write to the simulation cache ({exc.strerror or exc})", str(self.root)) from None
        self.stats.writes += 1
        self.stats.rollouts_written += n
        return p

    def _put_secret(self) -> bytes:
        try:
            return self.secret()
        except OSError as exc:
            raise InputError(f"cannot write to the simulation cache ({exc.strerror or exc})", str(self.root)) \
                from None

    def _write_version_file(self) -> None:
        vf = self.root / f"physics-{self.tag}" / "VERSION"
        if not vf.exists():
            fd, tmp = tempfile.mkstemp(prefix=".VERSION.", suffix=".tmp", dir=vf.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.version + "\n")
            os.replace(tmp, vf)

    # ------------------------------------------------------------------ housekeeping

    def _version_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(d for d in self.root.iterdir() if d.is_dir() and d.name.startswith("physics-"))

    def info(self, verify: bool = False) -> CacheInfo:
        """Count entries and bytes (this physics version and others); ``verify`` checks every checksum."""
        out = CacheInfo(root=self.root, physics_version=self.version, corrupt=[] if verify else None)
        secret = self.secret(create=False) if verify else None
        for d in self._version_dirs():
            current = d.name == f"physics-{self.tag}"
            if not current:
                vf = d / "VERSION"
                out.other_versions[d.name] = vf.read_text(encoding="utf-8").strip() if vf.is_file() else "?"
            for f in d.glob("*/*"):
                if f.name.endswith(".tmp"):
                    out.temp_files += 1
                    continue
                if not f.name.endswith(".parquet"):
                    continue
                size = f.stat().st_size
                if current:
                    out.entries += 1
                    out.bytes += size
                    if verify and (secret is None or not verify_entry(f, secret)):
                        out.corrupt.append(f)
                else:
                    out.stale_entries += 1
                    out.stale_bytes += size
        return out

    def clear(self, stale_only: bool = False) -> tuple[int, int]:
        """Delete entries (all, or only other physics versions' and temporary files).

        Returns ``(files removed, bytes freed)``.
        """
        n = size = 0
        for d in self._version_dirs():
            current = d.name == f"physics-{self.tag}"
            for f in d.glob("*/*"):
                if stale_only and current and not f.name.endswith(".tmp"):
                    continue
                if f.name.endswith(".parquet") or f.name.endswith(".tmp"):
                    try:
                        s = f.stat().st_size
                        f.unlink()
                    except OSError:
                        continue
                    n += 1
                    size += s
            if not (stale_only and current):
                shutil.rmtree(d, ignore_errors=True)
        return n, size


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except OSError:
        pass


def _decode(data: bytes, key: str, start: int | None, stop: int | None, query_keys: list[str] | None,
            secret: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse and check one entry; raise :class:`CorruptEntry` on any mismatch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
        raw = table.schema.metadata or {}
        meta = {k[len(_META_PREFIX):].decode(): v.decode() for k, v in raw.items() if k.startswith(_META_PREFIX)}
        if meta.get("key") != key or meta.get("format") != str(CACHE_FORMAT):
            raise CorruptEntry("key or format does not match")
        m_start, m_stop, m_queries = int(meta["start"]), int(meta["stop"]), json.loads(meta["queries"])
        if start is not None and (m_start, m_stop, m_queries) != (start, stop, query_keys):
            raise CorruptEntry("samples or queries do not match the request")
        n, nq = m_stop - m_start, len(m_queries)
        sample = table.column("sample").to_numpy()
        value = table.column("value").to_numpy()
        steps = table.column("steps").to_numpy()
        queries = table.column("query").to_pylist()
    except CorruptEntry:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt entry
        raise CorruptEntry(f"unreadable: {exc}") from None
    if len(value) != n * nq or nq == 0:
        raise CorruptEntry("wrong number of rows")
    if (not np.array_equal(sample, np.repeat(np.arange(m_start, m_stop), nq))
            or queries != m_queries * n):
        raise CorruptEntry("rows are not the stored samples and queries")
    if not hmac.compare_digest(_checksum(secret, key, m_start, m_stop, m_queries, sample, value, steps),
                               str(meta.get("checksum", ""))):
        raise CorruptEntry("checksum mismatch (damaged or forged)")
    steps2 = steps.reshape(n, nq)
    if not (steps2 == steps2[:, :1]).all():
        raise CorruptEntry("steps differ between the queries of one sample")
    return value.astype(float).reshape(n, nq), steps2[:, 0].astype(np.int64)


def verify_entry(path: str | os.PathLike, secret: bytes | None = None) -> bool:
    """True when the entry file parses and its keyed checksum and key (the file name) match.

    ``secret``: the cache's (default: read from the cache root the entry lives in,
    ``<root>/physics-<tag>/<ab>/<key>.parquet``; no secret there means False).
    """
    path = Path(path)
    try:
        if secret is None:
            secret = load_secret(path.parents[2], create=False)
            if secret is None:
                return False
        _decode(path.read_bytes(), path.name.removesuffix(".parquet"), None, None, None, secret)
    except (CorruptEntry, OSError, IndexError):
        return False
    return True


def as_cache(cache) -> SimulationCache | None:
    """``None``/``False`` → no cache; ``True`` → the default directory; a path → that directory."""
    if cache is None or cache is False:
        return None
    optional_import("pyarrow", "the simulation cache (rollouts stored as Parquet)")
    if cache is True:
        return SimulationCache()
    if isinstance(cache, SimulationCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return SimulationCache(cache)
    raise InputError(f"cache must be None, True, a directory or a SimulationCache, got {type(cache).__name__}")


__all__ = ["SimulationCache", "CacheStats", "CacheInfo", "physics_version", "physics_tag", "default_cache_dir",
           "verify_entry", "load_secret", "as_cache", "PHYSICS_REVISION", "PHYSICS_MODULES"]
