"""A run's files: the one error type, the one atomic writer, and readers that check what they read."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml


class StageError(RuntimeError):
    """A stage cannot go on (bad config or data file, missing input, NaN in training); the message is one
    line naming the file, the field and the fix. The stage frame prints it and exits 2."""


class ConfigError(StageError):
    """A config or claims file that cannot be run: a StageError like every other, named apart only so that the
    DAG can say "config error" before any job starts."""


# ------------------------------------------------------------------------------------------------- writing


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """`write(tmp)` into a hidden sibling, then rename it to `path`: a reader (or a rerun) never sees a
    half-written file, because a rename within one folder is atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")


def write_parquet(path: str | Path, frame) -> Path:
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


@contextmanager
def staged_outputs(out_dir: Path) -> Iterator[Path]:
    """All of a stage's outputs or none: yield a staging folder inside out_dir, and on success move each entry
    into out_dir by rename. An error while writing leaves out_dir as it was (the staging folder is removed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield staging
        for item in sorted(staging.iterdir()):
            target = out_dir / item.name
            if item.is_dir() and target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# Why an OSError stopped a stage, and what to do about it: the errno says more than the exception's text.
OS_FIXES = {
    errno.ENOSPC: "the disk is full. Fix: free space there, or point results_dir at a larger disk",
    errno.EDQUOT: "the disk quota is exceeded. Fix: free space there, or point results_dir elsewhere",
    errno.EROFS: "the file system is read-only. Fix: point results_dir (or --out) at a writable place",
    errno.EACCES: "permission denied. Fix: make it writable for this user, or choose another path",
    errno.EPERM: "operation not permitted. Fix: make it writable for this user, or choose another path",
    errno.ENOTDIR: "a part of this path is a file, not a folder. Fix: remove that file or choose another path",
    errno.EISDIR: "this is a folder where a file is expected. Fix: remove the folder or choose another path",
    errno.ENOENT: "no such file or folder. Fix: check the path",
    errno.EEXIST: "a file is in the way of a folder of this path. Fix: remove it or choose another path",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: the file it names, what happened and the fix."""
    where = exc.filename if exc.filename is not None else "(unnamed file)"
    reason = OS_FIXES.get(exc.errno, f"{exc.strerror or exc}. Fix: check the path and the disk")
    return f"{where}: {reason}."


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold `.<name>.lock` beside out_dir while a stage writes it; refuse, in one line naming the holder's pid and
    host, to run beside a live copy of the same job (an orphan left by a killed Snakemake, a second
    `--rerun-incomplete`). flock is released by the kernel when its holder dies, even by SIGKILL, so a stale lock
    file never blocks a rerun."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir.with_name(f".{out_dir.name}.lock")
    handle = open(lock_path, "a+")  # noqa: SIM115 - held until the stage ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown pid"
        handle.close()
        raise StageError(
            f"{out_dir}: another copy of this job is writing it ({holder}). Fix: wait for it to end, or stop it "
            "(kill that pid) and run again."
        ) from None
    except OSError as exc:  # a file system without flock (some cluster mounts): run without the lock
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            handle.close()
            raise
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on host {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        handle.close()


@contextmanager
def staged_dir(out_dir: Path) -> Iterator[Path]:
    """A stage's whole output folder, or none of it: yield a hidden sibling to write into; on success it replaces
    out_dir in two renames, so a reader (or a rerun) sees the old run or the new one, never a mix of them. On an
    error (or a kill) out_dir is untouched; a staging folder left by a killed run is removed by the next one.
    Call it inside `output_lock`, which makes the staging folder this process's own."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise StageError(f"{out_dir}: --out is a file, but this stage writes a folder. Fix: remove it or pass another.")
    staging = out_dir.with_name(f".{out_dir.name}.staging")
    old = out_dir.with_name(f".{out_dir.name}.old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if out_dir.exists():
            out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- reading


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require(path: str | Path) -> Path:
    """Return path if it is a file, else a StageError naming it and the rule that makes it."""
    from rlhf_bench.layout import producing_rule  # layout reads the config, which raises StageErrors

    path = Path(path)
    if not path.is_file():
        rule = producing_rule(path)
        fix = f"run the Snakemake rule '{rule}' first (it makes this file)" if rule else "rerun the workflow"
        raise StageError(f"{path}: missing. Fix: {fix}.")
    return path


def read_json(path: str | Path) -> dict:
    """A JSON object; a missing file, bad JSON or another type is a one-line StageError."""
    path = Path(path)
    try:
        data = json.loads(require(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise StageError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict):
        raise StageError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def field(mapping: dict, key: str, source: Path | str):
    """mapping[key], or a StageError that names the file and the missing field."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise StageError(f"{source}: missing field '{key}'")
    return mapping[key]


def flatten(data, prefix: str = "") -> dict[str, object]:
    """Nested JSON as dotted keys -> its leaves (lists stay whole): a config or provenance record as one
    row per setting, for compare's differences and the report's hyperparameter tables."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def read_table(path: str | Path, columns: tuple[str, ...], kind: str = "csv"):
    """A CSV, TSV or parquet file (a pandas DataFrame), checked for the columns the reader relies on."""
    # pandas and pyarrow here, not at the top: every stage imports this module, and most never read a table.
    import pandas as pd
    import pyarrow as pa

    path = require(path)
    try:
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except (OSError, ValueError, pa.ArrowException) as err:  # each means "unreadable file"
        raise StageError(f"{path}: cannot read {kind} ({type(err).__name__}: {err})".splitlines()[0]) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StageError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def read_text(path: str | Path, what: str, error: type[StageError] = StageError) -> str:
    """A UTF-8 text file's contents; a missing or unreadable file, a folder or other bytes are one line."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: byte {exc.start} is not UTF-8. Fix: save the {what} as UTF-8 text.") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror}). Fix: check the path.") from None


def read_yaml(path: str | Path, what: str, error: type[StageError] = StageError):
    """A YAML file's data; an unreadable file or bad YAML is one line of `error` naming the file and the line."""
    path = Path(path)
    text = read_text(path, what, error)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise error(
            f"{path}:{line} is not valid YAML ({getattr(exc, 'problem', exc)}). Fix: repair the YAML."
        ) from None


def read_checksums(data_dir: str | Path) -> dict[str, str]:
    """The data stage's checksums.json, which every later stage records in its provenance."""
    return read_json(Path(data_dir) / "checksums.json")


def checksum_tree(folder: str | Path) -> dict[str, str]:
    """sha256 of every file a stage wrote into its folder, by relative path: what its provenance.json records as
    `outputs` and every reader verifies. provenance.json itself and hidden temporaries are left out."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files if p != folder / "provenance.json"}


def verify_checksums(folder: str | Path, recorded: dict[str, str], record: str | Path) -> dict[str, str]:
    """Every file `record` lists under `folder` is there and hashes as recorded; else one line naming the file
    and the rule to rerun. Returns `recorded`, for the reader's provenance."""
    from rlhf_bench.layout import producing_rule

    for name, digest in recorded.items():
        path = Path(folder, name)
        rule = producing_rule(path) or "that made it"
        fix = f"Fix: rerun the rule '{rule}' (snakemake --forcerun {rule})."
        if not path.is_file():
            raise StageError(f"{path}: missing, but {record} records it. {fix}")
        if sha256_file(path) != digest:
            raise StageError(
                f"{path}: its sha256 is not the one {record} records (changed since it was written). {fix}"
            )
    return recorded


def verified(path: str | Path) -> Path:
    """A stage's output file, after checking it against the sha256 its producer recorded (layout.output_record)."""
    from rlhf_bench.layout import output_record

    path = require(path)
    record = output_record(path)
    recorded = field(field(read_json(record), "outputs", record), path.name, f"{record} outputs")
    verify_checksums(path.parent, {path.name: recorded}, record)
    return path


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")  # loading one can run code


def verified_outputs(folder: str | Path, stage: str) -> dict[str, str]:
    """A finished `stage`'s files (the folder given as --<stage>), checked against the `outputs` its provenance.json
    records. Another stage's folder is refused, and so is a pickle beside the files: peft and transformers fall
    back to `*.bin` weights where a safetensors file is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StageError(f"--{stage} {folder}: not a folder. Fix: pass the {stage} stage's folder (run it first).")
    pickles = sorted(p for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise StageError(f"{pickles[0]}: a pickle, which rlhf-bench never loads. Fix: delete it (safetensors only).")
    record = folder / "provenance.json"
    provenance = read_json(record)
    if provenance.get("stage") != stage:
        raise StageError(
            f"--{stage} {folder}: {record} says stage '{provenance.get('stage')}' wrote it, not '{stage}'. "
            f"Fix: pass the {stage} stage's folder (results/<profile>/<experiment>/{stage})."
        )
    return verify_checksums(folder, field(provenance, "outputs", record), record)


# ---------------------------------------------------------------------------------- path arguments
# Checked before anything is read or written: one line naming the path, the option and the fix, never a traceback
# from deep inside a reader or a writer, nor a "missing file" that sends the user to rerun a rule when the path
# itself was wrong.


def input_dir(path: str | Path, option: str, what: str) -> Path:
    """A folder the stage reads (--results-dir, a bundle): it must exist and be a folder."""
    return _existing(Path(path), option, what, "directory")


def input_file(path: str | Path, option: str, what: str) -> Path:
    """A file the stage reads that no rule makes (--claims): it must exist and be a file."""
    return _existing(Path(path), option, what, "file")


def _existing(path: Path, option: str, what: str, kind: str) -> Path:
    if path.is_dir() if kind == "directory" else path.is_file():
        return path
    other = "file" if kind == "directory" else "directory"
    found = f"a {other}, not a {kind}" if path.exists() else f"no such {kind}"
    raise StageError(f"{path}: {option}: {found}. Fix: pass {what}.")


def output_file(path: str | Path, option: str, what: str) -> Path:
    """A file the stage writes (--out): not an existing folder, and under folders (or nothing) only."""
    path = Path(path)
    if path.is_dir():
        raise StageError(
            f"{path}: {option}: an existing directory, but the stage writes a file here. Fix: name {what}."
        )
    _folders_above(path, option)
    return path


def output_dir(path: str | Path, option: str, what: str) -> Path:
    """A folder the stage writes into (--out-dir): not an existing file, and under folders (or nothing) only."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StageError(
            f"{path}: {option}: an existing file, but the stage writes a folder here. Fix: name {what}, or move "
            "the file away."
        )
    _folders_above(path, option)
    return path


def _folders_above(path: Path, option: str) -> None:
    """The nearest existing ancestor of `path` must be a folder, or creating the parents would fail."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise StageError(
                    f"{parent}: {option}: a file, but {path} needs it to be a folder. Fix: choose another path."
                )
            return
