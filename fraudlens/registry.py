"""The model registry: versioned, signed model folders, and the only place a model file is loaded.

Layout under ``<home>/models`` (``home`` is :func:`fraudlens.config.data_home` unless given)::

    <name>/
        v0001/             one saved version, never changed after it appears
            model.ubj          XGBoost native format (Booster.save_model), or
            model.joblib       a scikit-learn estimator or pipeline (joblib.dump)
            metadata.json      what the caller passed, plus name, version, kind, created_at, library versions
            features.json      the feature catalogue (list of dicts) the model was trained on
            MODEL_CARD.md      generated model card
            manifest.json      sha256 of every other file, signed with HMAC-SHA256
            <extra files>      e.g. test_scores.parquet, listed in metadata["extra_files"]
        v0002/ ...
        champion.json      the version in use, who chose it, when and why (absent: the latest is used)
        history.jsonl      every champion change, append-only
        .lock              serialises version numbering and champion changes (fcntl.flock)
        .staging-<hex>/    a save in progress; readers ignore it

Versions are integers 1, 2, 3, ... kept in folders ``v0001``, ``v0002``, ...; the number is
parsed, never compared as text, so ``v10000`` follows ``v9999``.

Saving is atomic: files are written and fsynced in a staging folder, and the folder is renamed to
its version name only when complete, so a process killed mid-save leaves no half-written version.
The saving process holds an flock on its staging folder; the next save removes staging folders
whose lock is free (their owner died).

Loading reads every file of the version once into memory, checks the manifest's HMAC and each
file's digest against those bytes, refuses files that are missing, extra or not regular files,
and only then deserialises the same bytes, so a file swapped after the check is never loaded.
The key is ``FRAUDLENS_REGISTRY_KEY`` (or ``registry_key`` in ``.streamlit/secrets.toml``); without
it, a random key is created on the first save in ``<home>/.registry_key`` (mode 0600). A key kept
outside the data directory also stops someone who can write there from re-signing a model; the key
file only catches corruption and edits by people who cannot read it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import io
import json
import logging
import math
import os
import pickle
import platform
import re
import secrets
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from fraudlens import config
from fraudlens.errors import ModelError
from fraudlens.files import fsync_path

logger = logging.getLogger(__name__)

KINDS = ("xgboost", "random_forest", "logistic", "external_xgboost")
XGBOOST_KINDS = frozenset({"xgboost", "external_xgboost"})
MODEL_FILES = {
    "xgboost": "model.ubj",
    "external_xgboost": "model.ubj",
    "random_forest": "model.joblib",
    "logistic": "model.joblib",
}
METADATA = "metadata.json"
FEATURES = "features.json"
CARD = "MODEL_CARD.md"
MANIFEST = "manifest.json"
CHAMPION = "champion.json"
HISTORY = "history.jsonl"
LOCK = ".lock"
STAGING_PREFIX = ".staging-"
KEY_FILE = ".registry_key"
RESERVED_FILES = frozenset({*MODEL_FILES.values(), METADATA, FEATURES, CARD, MANIFEST})
MANIFEST_FORMAT = 1
MANIFEST_ALGORITHM = "sha256+hmac-sha256"
IMPORT_SUFFIXES = (".ubj", ".json")
PROBABILITY_OBJECTIVES = ("binary:logistic", "reg:logistic")
MAX_IMPORT_BYTES = 1 << 30
MAX_SAVE_ATTEMPTS = 50
HEADLINE_METRICS = ("average_precision", "roc_auc")

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_VERSION_DIR_RE = re.compile(r"^v(\d{4,9})$")
_REF_VERSION_RE = re.compile(r"^v?(\d{1,9})$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_LIBRARIES = {
    "xgboost": ("xgboost", "xgboost-cpu"),
    "scikit-learn": ("scikit-learn",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "duckdb": ("duckdb",),
    "joblib": ("joblib",),
}


@dataclass(frozen=True)
class ModelVersion:
    """One saved version, as listed on the leaderboard (read from metadata.json, not verified)."""

    name: str
    version: int
    kind: str
    created_at: str
    dataset: str | None
    metrics: dict[str, float]
    champion: bool
    path: Path

    @property
    def ref(self) -> str:
        """``name@version``, the form the CLI accepts."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class LoadedModel:
    """A model that passed its integrity check, with what was saved beside it.

    XGBoost models come back as an ``xgboost.Booster`` (predict on a ``DMatrix``); scikit-learn
    models as the estimator or pipeline that was saved.
    """

    model: Any
    metadata: dict
    features: list[dict]
    version: int
    name: str
    kind: str

    @property
    def feature_names(self) -> list[str]:
        return [str(f["name"]) for f in self.features if "name" in f]


# ---------------------------------------------------------------------------------------------
# Names, references and paths


def check_name(name: object) -> str:
    """Return ``name`` if it is a plain identifier, else raise ModelError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ModelError(
            "The model name must be a plain identifier (a letter, then letters, digits or _; "
            f"at most 63 characters). Got {name!r} instead."
        )
    return name


def check_version(version: object) -> int:
    """Return ``version`` if it is an integer >= 1, else raise ModelError."""
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ModelError(f"The 'version' parameter must be an integer >= 1. Got {version!r} instead.")
    return int(version)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"name@3"`` -> ``("name", 3)``; ``"name"`` -> ``("name", None)`` (champion, else latest)."""
    if not isinstance(ref, str):
        raise ModelError(f"The model reference must be NAME or NAME@VERSION. Got {ref!r} instead.")
    name, sep, version = ref.partition("@")
    match = _REF_VERSION_RE.match(version) if sep else None
    if sep and (match is None or int(match.group(1)) < 1):
        raise ModelError(
            "The model reference must be NAME or NAME@VERSION with VERSION an integer >= 1 "
            f"(e.g. fraud_xgb@3). Got {ref!r} instead."
        )
    return check_name(name), int(match.group(1)) if match else None


def version_dir_name(version: int) -> str:
    return f"v{version:04d}"


def _parse_version_dir(dirname: str) -> int | None:
    match = _VERSION_DIR_RE.match(dirname)
    if match is None or version_dir_name(int(match.group(1))) != dirname:
        return None
    number = int(match.group(1))
    return number if number >= 1 else None


def _home(home: str | os.PathLike | None) -> Path:
    return Path(home) if home is not None else config.data_home()


def models_root(home: str | os.PathLike | None = None) -> Path:
    return _home(home) / "models"


def _model_dir(name: str, home: str | os.PathLike | None) -> Path:
    return models_root(home) / check_name(name)


def _version_numbers(model_dir: Path) -> list[int]:
    """Sorted version numbers present; staging folders, symlinks and stray files are ignored."""
    try:
        entries = list(os.scandir(model_dir))
    except FileNotFoundError:
        return []
    found = (_parse_version_dir(e.name) for e in entries if e.is_dir(follow_symlinks=False))
    return sorted(v for v in found if v is not None)


def _label(name: str, version: int) -> str:
    return f"Model {name} v{version}"


# ---------------------------------------------------------------------------------------------
# Files: atomic writes, fsync, locks


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        _write_file(tmp, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


def _append_line(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked(model_dir: Path) -> Iterator[None]:
    """Hold the model's lock file; the kernel releases it if the process dies."""
    model_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(model_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _open_staging(model_dir: Path) -> tuple[Path, int]:
    """A fresh staging folder and a descriptor holding its flock (call under the model lock)."""
    staging = model_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return staging, fd


def _remove_dead_staging(model_dir: Path) -> None:
    """Remove staging folders whose saving process is gone (call under the model lock)."""
    for entry in os.scandir(model_dir):
        if not entry.name.startswith(STAGING_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a save in progress in another process or thread
        try:
            shutil.rmtree(entry.path)
            logger.info("Removed the unfinished save %s of model %s", entry.name, model_dir.name)
        finally:
            os.close(fd)


def _read_regular(path: Path, label: str) -> bytes:
    """The bytes of a regular file; symlinks and other kinds of entry are refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refused(label, f"{path.name} is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise _refused(label, f"{path.name} is not a regular file")
        return fh.read()


# ---------------------------------------------------------------------------------------------
# The signing key


def registry_key(home: str | os.PathLike | None = None, *, create: bool = False) -> bytes:
    """The HMAC key: the ``registry_key`` secret, else ``<home>/.registry_key``.

    With ``create``, a missing key file is made with a random 32-byte key (mode 0600).
    """
    value = config.secret("registry_key")
    if value:
        if len(value) < 16:
            logger.warning("FRAUDLENS_REGISTRY_KEY is shorter than 16 characters; use a longer key")
        return value.encode("utf-8")
    path = _home(home) / KEY_FILE
    if not path.exists():
        if not create:
            raise ModelError(
                f"There is no registry key ({path} is missing and FRAUDLENS_REGISTRY_KEY is not set), "
                "so no saved model can be verified. Restore the key, or set FRAUDLENS_REGISTRY_KEY "
                "to the key the models were saved with."
            )
        _create_key_file(path)
    return _read_key_file(path)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{KEY_FILE}.tmp-{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # link() fails if the key appeared meanwhile: the first writer's key wins.
        os.link(tmp, path)
        logger.info("Created a registry key in %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


def _read_key_file(path: Path) -> bytes:
    if os.stat(path).st_mode & 0o077:
        logger.warning("The registry key %s can be read by other users; chmod 600 it", path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ModelError(
            f"The registry key file {path} is not valid (expected 64 hex characters). Restore it, "
            "or set FRAUDLENS_REGISTRY_KEY to the key the models were saved with."
        )
    return key


# ---------------------------------------------------------------------------------------------
# JSON and the manifest


def _to_json(value: Any, where: str) -> Any:
    """``value`` as plain JSON types; numpy scalars and dates converted, NaN/inf become null."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise _not_json(f"{where} key", key)
            out[str(key)] = _to_json(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise _not_json(where, value)


def _not_json(where: str, value: Any) -> ModelError:
    parameter = where.split("[")[0].split(" ")[0]
    return ModelError(
        f"The '{parameter}' parameter must hold only JSON values (numbers, strings, booleans, lists, "
        f"dicts with string keys, dates). Got {type(value).__name__} {value!r:.60} at {where} instead."
    )


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _canonical(payload: Mapping) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _sign(payload: Mapping, key: bytes) -> str:
    return hmac.new(key, _canonical(payload), hashlib.sha256).hexdigest()


def _manifest(name: str, version: int, digests: Mapping[str, str], key: bytes) -> dict:
    payload = {
        "format": MANIFEST_FORMAT,
        "algorithm": MANIFEST_ALGORITHM,
        "name": name,
        "version": version,
        "files": dict(sorted(digests.items())),
    }
    return {**payload, "signature": _sign(payload, key)}


def _refused(label: str, reason: str) -> ModelError:
    return ModelError(f"{label} failed its integrity check: {reason}; refusing to load it.")


def _signed_payload(raw: bytes, label: str, key: bytes) -> dict:
    """The manifest's payload once its shape and HMAC are checked."""
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refused(label, "manifest.json is not valid JSON") from None
    fields = {"format", "algorithm", "name", "version", "files", "signature"}
    if not isinstance(manifest, dict) or set(manifest) != fields:
        raise _refused(label, "manifest.json does not have the expected fields")
    payload = {k: manifest[k] for k in fields - {"signature"}}
    signature = manifest["signature"]
    if not isinstance(signature, str) or not hmac.compare_digest(_sign(payload, key), signature):
        raise _refused(
            label,
            "the signature of manifest.json does not match (the folder was edited after it was "
            "saved, or the registry key is not the one it was saved with)",
        )
    return payload


def _verified_files(folder: Path, name: str, version: int, key: bytes) -> dict[str, bytes]:
    """Every file of a version folder, read once and checked against the signed manifest."""
    label = _label(name, version)
    try:
        raw = _read_regular(folder / MANIFEST, label)
    except FileNotFoundError:
        raise _refused(label, "manifest.json is missing") from None
    payload = _signed_payload(raw, label, key)
    if payload["name"] != name or payload["version"] != version:
        raise _refused(label, f"its manifest was written for {payload['name']} v{payload['version']}")
    recorded = payload["files"]
    if not isinstance(recorded, dict) or not all(
        isinstance(f, str) and _FILE_NAME_RE.match(f) and isinstance(d, str) for f, d in recorded.items()
    ):
        raise _refused(label, "manifest.json lists files in an unexpected form")
    present = {entry.name for entry in os.scandir(folder)} - {MANIFEST}
    extra = sorted(present - set(recorded))
    if extra:
        raise _refused(label, f"{', '.join(extra)} is not listed in its manifest")
    missing = sorted(set(recorded) - present)
    if missing:
        raise _refused(label, f"{', '.join(missing)} is missing")
    contents = {}
    for file_name, digest in sorted(recorded.items()):
        data = _read_regular(folder / file_name, label)
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), str(digest)):
            raise _refused(label, f"{file_name} does not match its recorded digest")
        contents[file_name] = data
    return contents


# ---------------------------------------------------------------------------------------------
# Saving


def save_model(
    model: Any,
    *,
    name: str,
    kind: str,
    metadata: Mapping[str, Any],
    features: Sequence[Mapping[str, Any]],
    home: str | os.PathLike | None = None,
    extra_files: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Save ``model`` as the next version of ``name``; atomic, signed.

    Parameters
    ----------
    model : xgboost.Booster or fitted XGBClassifier for kind "xgboost"/"external_xgboost";
        a fitted scikit-learn classifier or pipeline (with ``predict_proba``) otherwise.
    name : plain identifier.
    kind : one of ``KINDS``.
    metadata : JSON-like mapping (dataset, windows, rows, features, parameters, metrics, seed,
        training seconds, ...). The registry adds name, version, kind, created_at, model_file,
        extra_files and library_versions, replacing caller keys of the same names.
    features : the feature catalogue, a list of dicts (each ideally with "name").
    extra_files : file name -> bytes, str or pandas DataFrame (written as Parquet; the name
        must end in .parquet). Signed with the rest and listed in metadata["extra_files"].

    Returns
    -------
    ModelVersion of the new version.
    """
    name = check_name(name)
    kind = _check_kind(kind)
    meta = _check_metadata(metadata)
    feats = _check_features(features)
    extras = _check_extra_files(extra_files)
    key = registry_key(home, create=True)
    model_dir = _model_dir(name, home)
    with _locked(model_dir):
        _remove_dead_staging(model_dir)
        staging, staging_fd = _open_staging(model_dir)
    try:
        digests = _write_payload(staging, model, kind, feats, extras)
        with _locked(model_dir):
            version, record = _publish(staging, model_dir, name, kind, meta, feats, digests, key)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        os.close(staging_fd)
    logger.info("Saved model %s v%d (%s, %d features)", name, version, kind, len(feats))
    return _model_version(name, version, record, model_dir / version_dir_name(version), False)


def _check_kind(kind: object) -> str:
    if kind not in KINDS:
        raise ModelError(f"The 'kind' parameter must be one of {KINDS}. Got {kind!r} instead.")
    return str(kind)


def _check_metadata(metadata: object) -> dict:
    if not isinstance(metadata, Mapping):
        raise ModelError(f"The 'metadata' parameter must be a dict. Got {type(metadata).__name__} instead.")
    return _to_json(metadata, "metadata")


def _check_features(features: object) -> list[dict]:
    if isinstance(features, (str, bytes)) or not isinstance(features, Sequence) or not all(
        isinstance(f, Mapping) for f in features
    ):
        raise ModelError(
            f"The 'features' parameter must be a list of dicts (one per feature). Got {features!r:.60} instead."
        )
    return _to_json(list(features), "features")


def _check_extra_files(extra_files: Mapping[str, Any] | None) -> dict[str, Any]:
    extras = dict(extra_files or {})
    for file_name, content in extras.items():
        if not isinstance(file_name, str) or not _FILE_NAME_RE.match(file_name) or file_name in RESERVED_FILES:
            raise ModelError(
                "Extra file names must be plain file names (letters, digits, _ . -) other than "
                f"{sorted(RESERVED_FILES)}. Got {file_name!r} instead."
            )
        if _is_frame(content) and not file_name.endswith(".parquet"):
            raise ModelError(f"A DataFrame is saved as Parquet; its name must end in .parquet. Got {file_name!r} instead.")
        if not isinstance(content, (bytes, bytearray, str)) and not _is_frame(content):
            raise ModelError(
                f"The extra file {file_name!r} must be bytes, str or a pandas DataFrame. "
                f"Got {type(content).__name__} instead."
            )
    return extras


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_parquet")


def _write_payload(staging: Path, model: Any, kind: str, features: list[dict], extras: dict) -> dict[str, str]:
    """Write the model, features and extra files; return their sha256 digests."""
    model_file = staging / MODEL_FILES[kind]
    if kind in XGBOOST_KINDS:
        _booster_of(model, kind).save_model(str(model_file))
        fsync_path(model_file)
    else:
        _dump_estimator(model, kind, model_file)
    _write_file(staging / FEATURES, _json_bytes(features))
    for file_name, content in extras.items():
        _write_extra(staging / file_name, content)
    return {p.name: _sha256_file(p) for p in staging.iterdir()}


def _booster_of(model: Any, kind: str) -> Any:
    import xgboost

    if isinstance(model, xgboost.Booster):
        return model
    if hasattr(model, "get_booster"):
        try:
            return model.get_booster()
        except (ValueError, AttributeError, xgboost.core.XGBoostError) as exc:
            raise ModelError(f"The XGBoost model is not fitted; fit it before saving ({exc}).") from exc
    raise ModelError(
        f"A model of kind {kind!r} must be an xgboost.Booster or a fitted XGBClassifier. "
        f"Got {type(model).__name__} instead."
    )


def _dump_estimator(model: Any, kind: str, path: Path) -> None:
    import joblib

    if not callable(getattr(model, "predict_proba", None)):
        raise ModelError(
            f"A model of kind {kind!r} must have a predict_proba method (a fitted scikit-learn "
            f"classifier or pipeline). Got {type(model).__name__} instead."
        )
    try:
        joblib.dump(model, path, compress=3)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ModelError(f"The {type(model).__name__} model cannot be saved with joblib: {exc}") from exc
    fsync_path(path)


def _write_extra(path: Path, content: Any) -> None:
    if _is_frame(content):
        content.to_parquet(path, index=False)
        fsync_path(path)
    else:
        _write_file(path, content.encode("utf-8") if isinstance(content, str) else bytes(content))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _publish(
    staging: Path,
    model_dir: Path,
    name: str,
    kind: str,
    meta: dict,
    features: list[dict],
    digests: dict[str, str],
    key: bytes,
) -> tuple[int, dict]:
    """Number, describe, sign and rename the staging folder (call under the model lock).

    The rename fails if a folder of that number appeared meanwhile (e.g. a writer that did not
    take the lock); the files that name the version are then rewritten with the next number.
    """
    extras = sorted(set(digests) - {MODEL_FILES[kind], FEATURES})
    version = 0
    for _ in range(MAX_SAVE_ATTEMPTS):
        version = max([version, *_version_numbers(model_dir)]) + 1
        record = _registry_record(name, version, kind, meta, extras)
        described = {METADATA: _json_bytes(record), CARD: render_model_card(record, features).encode("utf-8")}
        for file_name, data in described.items():
            _write_file(staging / file_name, data)
        signed = {**digests, **{f: hashlib.sha256(d).hexdigest() for f, d in described.items()}}
        _write_file(staging / MANIFEST, _json_bytes(_manifest(name, version, signed, key)))
        fsync_path(staging)
        target = model_dir / version_dir_name(version)
        if target.exists():
            continue
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            logger.debug("Version folder %s appeared meanwhile; trying the next number", target.name)
            continue
        fsync_path(model_dir)
        return version, record
    raise ModelError(f"Could not find a free version number for model {name} after {MAX_SAVE_ATTEMPTS} tries.")


def _registry_record(name: str, version: int, kind: str, meta: dict, extras: list[str]) -> dict:
    added = {
        "name": name,
        "version": version,
        "kind": kind,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_file": MODEL_FILES[kind],
        "extra_files": extras,
        "library_versions": library_versions(),
    }
    replaced = sorted(k for k in added if k in meta and meta[k] != added[k])
    if replaced:
        logger.debug("The registry sets %s of model %s itself", ", ".join(replaced), name)
    return {**meta, **added}


def library_versions() -> dict[str, str]:
    """Python and the versions of the libraries a model depends on (those installed)."""
    found = {"python": platform.python_version()}
    for library, distributions in _LIBRARIES.items():
        for distribution in distributions:
            try:
                found[library] = importlib_metadata.version(distribution)
                break
            except importlib_metadata.PackageNotFoundError:
                continue
    return found


# ---------------------------------------------------------------------------------------------
# Loading


def load_model(name: str, version: int | None = None, home: str | os.PathLike | None = None) -> LoadedModel:
    """Verify, then load, a saved model. ``version`` None means the champion, else the latest.

    Every file of the version is checked against the signed manifest before the model bytes are
    deserialised; any mismatch raises ModelError and nothing is loaded.
    """
    name = check_name(name)
    model_dir = _model_dir(name, home)
    version = _resolve_version(model_dir, name, version)
    key = registry_key(home)
    contents = _verified_files(model_dir / version_dir_name(version), name, version, key)
    metadata, features = _checked_description(contents, name, version)
    kind = metadata["kind"]
    model = _deserialise(kind, contents[MODEL_FILES[kind]], _label(name, version))
    logger.info("Loaded model %s v%d (%s)", name, version, kind)
    return LoadedModel(model, metadata, features, version, name, kind)


def verify(name: str, version: int | None = None, home: str | os.PathLike | None = None) -> ModelVersion:
    """Run the integrity check of ``load_model`` without deserialising the model."""
    name = check_name(name)
    model_dir = _model_dir(name, home)
    version = _resolve_version(model_dir, name, version)
    contents = _verified_files(model_dir / version_dir_name(version), name, version, registry_key(home))
    metadata, _ = _checked_description(contents, name, version)
    try:
        is_champion = _champion_or_none(model_dir, name) == version
    except ModelError:
        is_champion = False
    return _model_version(name, version, metadata, model_dir / version_dir_name(version), is_champion)


def _resolve_version(model_dir: Path, name: str, version: int | None) -> int:
    available = _version_numbers(model_dir)
    if not available:
        raise ModelError(
            f"There is no model named '{name}' in {model_dir.parent}. Train one with "
            "`python -m fraudlens train --dataset NAME --model xgboost`."
        )
    if version is None:
        chosen = _champion_or_none(model_dir, name)
        if chosen is not None and chosen not in available:
            raise ModelError(
                f"The champion of model '{name}' is version {chosen}, which does not exist. "
                f"Choose another champion among versions {_listed(available)}."
            )
        return chosen if chosen is not None else available[-1]
    version = check_version(version)
    if version not in available:
        raise ModelError(f"Model '{name}' has no version {version}. Its versions are {_listed(available)}.")
    return version


def _listed(numbers: Sequence[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def _checked_description(contents: dict[str, bytes], name: str, version: int) -> tuple[dict, list[dict]]:
    """metadata.json and features.json of a verified folder, checked against where they live."""
    label = _label(name, version)
    for required in (METADATA, FEATURES, CARD):
        if required not in contents:
            raise _refused(label, f"{required} is missing")
    try:
        metadata = json.loads(contents[METADATA])
        features = json.loads(contents[FEATURES])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refused(label, "its metadata is not valid JSON") from None
    if not isinstance(metadata, dict) or not isinstance(features, list):
        raise _refused(label, "its metadata does not have the expected shape")
    if metadata.get("name") != name or metadata.get("version") != version:
        raise _refused(label, f"metadata.json describes {metadata.get('name')} v{metadata.get('version')}")
    kind = metadata.get("kind")
    if kind not in KINDS:
        raise _refused(label, f"metadata.json has an unknown kind {kind!r}")
    expected = {MODEL_FILES[kind], METADATA, FEATURES, CARD, *metadata.get("extra_files", [])}
    if set(contents) != expected:
        raise _refused(label, "its files are not the ones its metadata lists")
    return metadata, features


def _deserialise(kind: str, data: bytes, label: str) -> Any:
    """Turn verified bytes into a model (never called on bytes that failed the check)."""
    if kind in XGBOOST_KINDS:
        import xgboost

        booster = xgboost.Booster()
        try:
            booster.load_model(bytearray(data))
        except (xgboost.core.XGBoostError, UnicodeDecodeError) as exc:
            raise ModelError(f"{label} cannot be read by xgboost {xgboost.__version__}: {_first_line(exc)}") from exc
        return booster
    import joblib

    try:
        return joblib.load(io.BytesIO(data))
    except (pickle.UnpicklingError, ImportError, AttributeError, EOFError, ValueError, TypeError) as exc:
        raise ModelError(
            f"{label} cannot be loaded with the installed libraries ({library_versions()}); it was saved "
            f"with a different version, so retrain it: {exc}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def read_extra(name: str, version: int | None, file_name: str, home: str | os.PathLike | None = None) -> bytes:
    """The bytes of an extra file saved with a version, after the version's integrity check."""
    name = check_name(name)
    model_dir = _model_dir(name, home)
    version = _resolve_version(model_dir, name, version)
    contents = _verified_files(model_dir / version_dir_name(version), name, version, registry_key(home))
    metadata, _ = _checked_description(contents, name, version)
    if file_name not in metadata.get("extra_files", []):
        raise ModelError(
            f"{_label(name, version)} has no extra file {file_name!r}. "
            f"It has {metadata.get('extra_files') or 'none'}."
        )
    return contents[file_name]


def read_table(name: str, version: int | None, file_name: str, home: str | os.PathLike | None = None,
               columns: list[str] | None = None):
    """An extra Parquet file saved with a version (e.g. test_scores.parquet) as a DataFrame, with
    only ``columns`` when given."""
    import pandas as pd

    if not str(file_name).endswith(".parquet"):
        raise ModelError(f"The 'file_name' parameter must end in .parquet. Got {file_name!r} instead.")
    return pd.read_parquet(io.BytesIO(read_extra(name, version, file_name, home)), columns=columns)


# ---------------------------------------------------------------------------------------------
# Listing, metadata, model cards


def list_models(home: str | os.PathLike | None = None) -> list[ModelVersion]:
    """Every version of every model, by name then version (for the leaderboard)."""
    root = models_root(home)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    names = [e.name for e in entries if e.is_dir(follow_symlinks=False) and _NAME_RE.match(e.name)]
    return [v for name in names for v in versions(name, home)]


def versions(name: str, home: str | os.PathLike | None = None) -> list[ModelVersion]:
    """The versions of ``name``, oldest first; [] if there is no such model.

    Read from metadata.json without the integrity check (listing must stay cheap); a version
    whose metadata cannot be read is left out with a warning.
    """
    model_dir = _model_dir(name, home)
    try:
        chosen = champion(name, home)
    except ModelError as exc:
        logger.warning("%s", exc)
        chosen = None
    found = []
    for number in _version_numbers(model_dir):
        folder = model_dir / version_dir_name(number)
        try:
            record = json.loads((folder / METADATA).read_text(encoding="utf-8"))
            found.append(_model_version(name, number, record, folder, number == chosen))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            logger.warning("Skipping model %s v%d: its metadata cannot be read (%s)", name, number, exc)
    return found


def _model_version(name: str, version: int, record: dict, folder: Path, is_champion: bool) -> ModelVersion:
    return ModelVersion(
        name=name,
        version=version,
        kind=str(record.get("kind", "unknown")),
        created_at=str(record.get("created_at", "")),
        dataset=record.get("dataset"),
        metrics=flat_metrics(record.get("metrics")),
        champion=is_champion,
        path=folder,
    )


def flat_metrics(metrics: object, prefix: str = "") -> dict[str, float]:
    """The numeric metrics, nested dicts flattened to ``split.metric`` keys."""
    out: dict[str, float] = {}
    if not isinstance(metrics, Mapping):
        return out
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            out.update(flat_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def summary(version: ModelVersion) -> dict:
    """A leaderboard row (``models --json``): headline metrics are NaN when not recorded."""
    row = {
        "name": version.name,
        "version": version.version,
        "ref": version.ref,
        "kind": version.kind,
        "created_at": version.created_at,
        "dataset": version.dataset,
        "champion": version.champion,
    }
    row.update({metric: float("nan") for metric in HEADLINE_METRICS})
    row.update(version.metrics)
    return row


def read_metadata(name: str, version: int | None = None, home: str | os.PathLike | None = None) -> dict:
    """metadata.json of a version (None: champion, else latest), without the integrity check."""
    folder = _version_folder(name, version, home)
    try:
        return json.loads((folder / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"The metadata of model {name} ({folder.name}) cannot be read: {exc}") from exc


def read_features(name: str, version: int | None = None, home: str | os.PathLike | None = None) -> list[dict]:
    """features.json of a version, without the integrity check."""
    folder = _version_folder(name, version, home)
    try:
        return json.loads((folder / FEATURES).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"The features of model {name} ({folder.name}) cannot be read: {exc}") from exc


def model_card(name: str, version: int | None = None, home: str | os.PathLike | None = None) -> str:
    """The model card (markdown) of a version."""
    folder = _version_folder(name, version, home)
    try:
        return (folder / CARD).read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"The model card of model {name} ({folder.name}) cannot be read: {exc}") from exc


def _version_folder(name: str, version: int | None, home: str | os.PathLike | None) -> Path:
    model_dir = _model_dir(name, home)
    return model_dir / version_dir_name(_resolve_version(model_dir, name, version))


def compare(name: str, home: str | os.PathLike | None = None):
    """A DataFrame with one row per version of ``name``: version, kind, created_at, champion,
    dataset, training_seconds, n_features and every numeric metric (NaN where not recorded)."""
    import pandas as pd

    rows = []
    for found in versions(name, home):
        meta = read_metadata(name, found.version, home)
        features = read_features(name, found.version, home)
        rows.append({
            "version": found.version,
            "kind": found.kind,
            "created_at": found.created_at,
            "champion": found.champion,
            "dataset": found.dataset,
            "training_seconds": meta.get("training_seconds"),
            "n_features": len(features) if isinstance(features, list) else None,
            **found.metrics,
        })
    columns = ["version", "kind", "created_at", "champion", "dataset", "training_seconds", "n_features"]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r])))


# ---------------------------------------------------------------------------------------------
# Champion


def champion(name: str, home: str | os.PathLike | None = None) -> int | None:
    """The champion version of ``name``, or None if none was set."""
    return _champion_or_none(_model_dir(name, home), name)


def _champion_or_none(model_dir: Path, name: str) -> int | None:
    path = model_dir / CHAMPION
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return check_version(data["version"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, ModelError) as exc:
        raise ModelError(
            f"The champion file of model '{name}' ({path}) cannot be read ({exc}); "
            "set the champion again."
        ) from exc


def set_champion(
    name: str, version: int, user: str, comment: str, home: str | os.PathLike | None = None
) -> ModelVersion:
    """Make ``version`` the model used when no version is asked for; record who, when and why.

    The version must pass its integrity check. The change is appended to history.jsonl before
    champion.json is replaced, so the audit trail never misses a change that took effect.
    """
    name = check_name(name)
    version = check_version(version)
    if not isinstance(user, str) or not user.strip():
        raise ModelError(f"The 'user' parameter must be a non-empty string. Got {user!r} instead.")
    if not isinstance(comment, str):
        raise ModelError(f"The 'comment' parameter must be a string. Got {comment!r} instead.")
    model_dir = _model_dir(name, home)
    _resolve_version(model_dir, name, version)  # before the lock, which would create the folder
    with _locked(model_dir):
        verified = verify(name, version, home)
        try:
            previous = _champion_or_none(model_dir, name)
        except ModelError:
            previous = None  # an unreadable champion file is replaced
        entry = {
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "name": name,
            "version": version,
            "previous": previous,
            "user": user.strip(),
            "comment": comment,
        }
        _append_line(model_dir / HISTORY, json.dumps(entry, ensure_ascii=False))
        _write_atomic(model_dir / CHAMPION, _json_bytes(entry))
    logger.info("Model %s: champion is now v%d (was %s)", name, version, previous)
    return _model_version(name, version, read_metadata(name, version, home), verified.path, True)


def history(name: str, home: str | os.PathLike | None = None) -> list[dict]:
    """The champion changes of ``name``, oldest first."""
    path = _model_dir(name, home) / HISTORY
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for number, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            logger.warning("Skipping line %d of %s: not JSON", number, path)
    return out


# ---------------------------------------------------------------------------------------------
# Importing an XGBoost model made elsewhere


def import_xgboost(
    path: str | os.PathLike,
    *,
    name: str,
    feature_names: Sequence[str],
    metadata: Mapping[str, Any] | None = None,
    home: str | os.PathLike | None = None,
    evaluate: Callable[[Any], tuple[dict, dict]] | None = None,
) -> ModelVersion:
    """Register an XGBoost model file (.ubj or .json, from ``Booster.save_model``) as kind
    "external_xgboost". Pickles are never accepted: nothing here unpickles.

    The file must load as an ``xgboost.Booster`` with a probability objective
    (``binary:logistic`` or ``reg:logistic``) and as many features as ``feature_names``.
    ``evaluate(booster)``, called only after those checks, may return extra metadata (e.g. test
    metrics) and extra files (e.g. test scores) to store and sign with the version.
    """
    path = Path(path)
    name = check_name(name)
    extra_meta = _check_metadata(metadata or {})
    if path.suffix.lower() not in IMPORT_SUFFIXES:
        raise ModelError(
            "The model file must be an XGBoost model saved with Booster.save_model as .ubj or .json. "
            f"Got {path.name!r} instead; pickled models (.pkl, .joblib) are never loaded."
        )
    names = _check_feature_names(feature_names)
    booster, digest = _read_external(path)
    _check_external(booster, names, path.name)
    objective = _objective(booster)
    if booster.feature_names is None:
        try:
            booster.feature_names = names
        except ValueError as exc:
            raise ModelError(f"The 'feature_names' parameter holds a name xgboost refuses: {exc}") from exc
    meta = {
        **extra_meta,
        "source_file": path.name,
        "source_sha256": digest,
        "objective": objective,
        "num_features": len(names),
        "num_boosted_rounds": booster.num_boosted_rounds(),
        "features": names,
    }
    features = [
        {"name": n, "description": "imported with the model; not described", "source": "external"} for n in names
    ]
    extra_files = None
    if evaluate is not None:
        more_meta, extra_files = evaluate(booster)
        meta.update(more_meta)
    return save_model(booster, name=name, kind="external_xgboost", metadata=meta, features=features,
                      home=home, extra_files=extra_files)


def _check_feature_names(feature_names: object) -> list[str]:
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence):
        raise ModelError(f"The 'feature_names' parameter must be a list of strings. Got {feature_names!r:.60} instead.")
    names = list(feature_names)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ModelError(
            f"The 'feature_names' parameter must be a non-empty list of non-empty strings. Got {names!r:.80} instead."
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ModelError(f"The 'feature_names' parameter must not repeat names. Got {duplicates} more than once.")
    return names


def _read_external(path: Path) -> tuple[Any, str]:
    """Load ``path`` as a Booster (format by suffix) and return it with the file's sha256."""
    import xgboost

    if not path.is_file():
        raise ModelError(f"The model file {path} does not exist or is not a file.")
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise ModelError(f"The model file {path.name} is {size:,} bytes; the limit is {MAX_IMPORT_BYTES:,}.")
    not_a_model = (
        f"{path.name} is not an XGBoost model that xgboost {xgboost.__version__} can read "
        "({}). Save the model with Booster.save_model('model.ubj')."
    )
    # Both formats are one JSON/UBJSON object; checking this first also keeps binary junk out of
    # xgboost's error text, which it cannot decode.
    with open(path, "rb") as fh:
        if not fh.read(4096).lstrip().startswith(b"{"):
            raise ModelError(not_a_model.format("it does not start with an object"))
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except (xgboost.core.XGBoostError, UnicodeDecodeError) as exc:
        raise ModelError(not_a_model.format(_first_line(exc))) from exc
    return booster, _sha256_file(path)


def _check_external(booster: Any, names: list[str], file_name: str) -> None:
    expected = booster.num_features()
    if len(names) != expected:
        raise ModelError(
            f"The 'feature_names' parameter must list {expected} names, one per feature of {file_name}. "
            f"Got {len(names)} instead."
        )
    own = booster.feature_names
    if own is not None and list(own) != names:
        first = next(i for i, (a, b) in enumerate(zip(own, names)) if a != b)
        raise ModelError(
            f"{file_name} was trained with features in another order or with other names: feature "
            f"{first + 1} is {own[first]!r} in the model and {names[first]!r} in 'feature_names'."
        )


def _objective(booster: Any) -> str:
    config_json = json.loads(booster.save_config())
    objective = str(config_json.get("learner", {}).get("objective", {}).get("name", ""))
    if objective not in PROBABILITY_OBJECTIVES:
        raise ModelError(
            f"The model's objective must be one of {PROBABILITY_OBJECTIVES} (its score is read as a "
            f"probability of fraud). Got {objective!r} instead."
        )
    return objective


# ---------------------------------------------------------------------------------------------
# The model card


SYNTHETIC_NOTE = (
    "Trained and tested on the synthetic demo dataset. Its metrics describe how the model does on "
    "generated data and say nothing about real transactions; retrain and re-evaluate on the "
    "institution's own data before drawing any conclusion."
)


def render_model_card(metadata: Mapping[str, Any], features: Sequence[Mapping[str, Any]]) -> str:
    """A markdown model card built from a version's metadata and feature catalogue."""
    sections = [
        _card_header(metadata),
        _card_intended_use(),
        _card_data(metadata),
        _card_features(features),
        _card_metrics(metadata.get("metrics")),
        _card_training(metadata),
        _card_limits(metadata),
        _card_versions(metadata.get("library_versions")),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _card_header(meta: Mapping[str, Any]) -> str:
    name, version = meta.get("name"), meta.get("version")
    rows = [
        ("Model", f"{name} v{version} (`{name}@{version}`)"),
        ("Kind", meta.get("kind")),
        ("Created (UTC)", meta.get("created_at")),
        ("Dataset", meta.get("dataset", "not recorded")),
    ]
    if meta.get("source_file"):
        rows.append(("Imported from", f"{meta['source_file']} (sha256 {str(meta.get('source_sha256'))[:12]}…)"))
    return f"# Model card: {_md(name)} v{version}\n\n" + _table(("", ""), rows)


def _card_intended_use() -> str:
    return (
        "## Intended use\n\n"
        "Alert triage support for a banking supervisor's fraud analysts: the model ranks transactions "
        "by their estimated probability of fraud so that analysts review the riskiest first. "
        "**It is not an automatic decision.** No transaction is blocked, no customer is reported "
        "and no account is closed on its score alone: an analyst reviews every alert and decides."
    )


def _card_data(meta: Mapping[str, Any]) -> str:
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), Mapping) else {}
    lines = [f"- Dataset: {_md(meta.get('dataset', 'not recorded'))}"]
    windows = meta.get("windows")
    if windows:
        lines.append(f"- Windows: {_windows_text(windows)}")
    for split in ("train", "test"):
        rows = _first_number(meta, metrics, f"rows_{split}", f"{split}_rows")
        frauds = _first_number(meta, metrics, f"frauds_{split}", f"{split}_frauds")
        rate = _first_number(meta, metrics, f"fraud_rate_{split}", f"{split}_fraud_rate")
        if rate is None and rows and frauds is not None:
            rate = frauds / rows
        parts = [f"{rows:,.0f} rows" if rows is not None else None,
                 f"{frauds:,.0f} frauds" if frauds is not None else None,
                 f"fraud rate {rate:.2%}" if rate is not None else None]
        if any(parts):
            lines.append(f"- {split.capitalize()}: " + ", ".join(p for p in parts if p))
    share = meta.get("legit_sample_share")
    if isinstance(share, (int, float)) and share < 1:
        lines.append(f"- Sampled: every fraud and {share:.1%} of the legitimate rows of the train window "
                     f"({meta.get('rows_train_window', 0):,} rows), each weighted by the inverse of that share")
    if meta.get("label_delay_days") is not None:
        lines.append(f"- Label delay: {meta['label_delay_days']} days")
    return "## Data\n\n" + "\n".join(lines)


def _windows_text(windows: Any) -> str:
    if isinstance(windows, Mapping):
        splits = []
        for split in ("train", "test"):
            start, end = windows.get(f"{split}_from"), windows.get(f"{split}_until")
            if start or end:
                splits.append(f"{split} {start} to {end}")
        if splits:
            return "; ".join(splits)
        return "; ".join(f"{k} {_value_text(v)}" for k, v in windows.items())
    return _value_text(windows)


def _first_number(meta: Mapping[str, Any], metrics: Mapping[str, Any], *keys: str) -> float | None:
    for source in (meta, metrics):
        for key in keys:
            value = source.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def _card_features(features: Sequence[Mapping[str, Any]]) -> str:
    header = f"## Features\n\n{len(features)} features."
    if not features:
        return header
    columns = [c for c in ("name", "type", "description") if any(c in f for f in features)] or ["name"]
    rows = [[_value_text(f.get(c, "")) if c != "name" else f"`{_code(f.get('name', f))}`" for c in columns]
            for f in features]
    return header + "\n\n" + _table(columns, rows)


def _card_metrics(metrics: Any) -> str:
    if not isinstance(metrics, Mapping) or not metrics:
        return "## Metrics\n\nNo metrics were recorded."
    nested = [k for k, v in metrics.items() if isinstance(v, Mapping)]
    if nested and len(nested) == len(metrics):
        names = list(dict.fromkeys(m for split in nested for m in metrics[split]))
        rows = [[_md(m)] + [_metric_text(metrics[s].get(m)) for s in nested] for m in names]
        return "## Metrics\n\n" + _table(["metric", *nested], rows)
    rows = [[_md(k), _metric_text(v)] for k, v in metrics.items()]
    return "## Metrics\n\nOn the test window unless the name says otherwise.\n\n" + _table(["metric", "value"], rows)


def _card_training(meta: Mapping[str, Any]) -> str:
    lines = []
    for key, label in (("seed", "Seed"), ("training_seconds", "Training time (s)"), ("objective", "Objective")):
        if meta.get(key) is not None:
            lines.append(f"- {label}: {_value_text(meta[key])}")
    params = meta.get("parameters") or meta.get("params")
    if isinstance(params, Mapping) and params:
        shown = ", ".join(f"{_md(k)}={_value_text(v)}" for k, v in params.items() if v is not None)
        lines.append(f"- Parameters: {shown}")
    return "## Training\n\n" + "\n".join(lines) if lines else ""


def _card_limits(meta: Mapping[str, Any]) -> str:
    lines = []
    if meta.get("dataset") == config.DEMO_DATASET or meta.get("synthetic"):
        lines.append(f"- **Synthetic data.** {SYNTHETIC_NOTE}")
    if meta.get("kind") == "external_xgboost":
        lines.append("- **Trained outside FraudLens.** Its training data, features and procedure are "
                     "known only from what the importer recorded; check them before relying on it.")
    delay = meta.get("label_delay_days")
    delay_text = f" (this model assumed {delay} days)" if delay is not None else ""
    lines += [
        f"- **Label delay.** Fraud is confirmed late, through chargebacks and complaints{delay_text}: the most "
        "recent transactions look legitimate until their labels arrive, so recent fraud rates and "
        "recall are understated.",
        "- **Drift.** Fraud patterns, customers and channels change; monitor the score distribution "
        "and the precision of worked alerts, and retrain when they move.",
        "- **Threshold.** The model gives a score, not a decision. The alert threshold must be set by "
        "an analyst against precision, recall, alerts per day and money caught, and reviewed when "
        "conditions change; 0.5 is not a recommendation.",
    ]
    return "## Limits\n\n" + "\n".join(lines)


def _card_versions(versions_: Any) -> str:
    if not isinstance(versions_, Mapping) or not versions_:
        return ""
    return "## Versions\n\n" + _table(["library", "version"], [[_md(k), _md(v)] for k, v in versions_.items()])


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) if c is not None else "" for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _metric_text(value: Any) -> str:
    """Metrics get four decimals so a column of them lines up."""
    if isinstance(value, float) and abs(value) < 1000:
        return f"{value:.4f}"
    return _value_text(value)


def _value_text(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{_md(k)}: {_value_text(v)}" for k, v in value.items())
    return _md(value)


def _md(value: Any) -> str:
    """Text safe inside a markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(value: Any) -> str:
    return _md(value).replace("`", "'")
