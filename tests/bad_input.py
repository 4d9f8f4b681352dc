"""What every bad-input case asserts (issue 12): exit status 2 (1 for Snakemake's own preflight), one line naming
the file and the field, no traceback, and nothing left behind that a rerun would trust."""

from __future__ import annotations

from pathlib import Path


def error_line(err: str, *names: str) -> str:
    """The one error line of a stage's stderr, after checking it names every one of `names`.

    Libraries may warn before the error (transformers, tqdm); the error itself is exactly one line that starts
    where the frame prints it (`<module>: error:` or `rlhf-bench: config error:`), and nothing is a traceback."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if ": error:" in line or "config error:" in line]
    assert len(errors) == 1, err
    line = errors[0]
    for name in names:
        assert str(name) in line, (name, line)
    return line


def nothing_trusted(out: Path, before: dict[str, bytes] | None = None) -> None:
    """`out` is as it was before the failed call: absent, or holding exactly the files (and bytes) it held."""
    out = Path(out)
    now = snapshot(out)
    assert now == (before or {}), sorted(set(now) ^ set(before or {}))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too, except the lock and staging siblings' own) with its bytes."""
    folder = Path(folder)
    if folder.is_file():
        return {folder.name: folder.read_bytes()}
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
