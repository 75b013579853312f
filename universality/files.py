"""Output files and folders: checked before any work, written atomically, nothing partial left.

The rules every output option follows (``--export``, ``--report``, ``--plot``):

* an empty path is refused; a dangling symbolic link is refused;
* missing parent folders are created (with the mode the umask gives, like ``mkdir -p``) and
  removed again if the write fails;
* existing output is replaced only with ``--force``;
* everything is written into a temporary sibling and then renamed into place, so a failure (a full
  disk, Ctrl-C) leaves neither a partial file nor the temporary;
* an I/O failure while writing raises :class:`~universality.errors.OutputError` (exit 3).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OutputError, PathError


def umask() -> int:
    """The process's umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and not p.is_symlink():
        p = p.parent
    return p


def check_path(path, *, option: str, force: bool = False, folder: bool = True, error=PathError) -> Path:
    """Validate an output path before any work is done (``error``, one line, exit 2)."""
    text = os.fspath(path) if path is not None else ""
    if str(text).strip() == "":
        raise error(f"{option} needs a {'folder' if folder else 'file'} name, got an empty path")
    p = Path(text)
    if p.is_symlink() and not p.exists():
        raise error(f"{option}: {text!r} is a dangling symbolic link (its target {os.readlink(p)!r} does not exist)")
    kind = "folder" if folder else "file"
    if p.exists():
        if folder and not p.is_dir():
            raise error(f"{option}: {text!r} exists and is not a folder")
        if not folder and p.is_dir():
            raise error(f"{option}: {text!r} is a folder, not a file")
        if not force and (not folder or any(p.iterdir())):
            raise error(f"{option}: {text!r} already exists{' and is not empty' if folder else ''}; "
                        "use --force to replace it")
    base = _nearest_existing(p if not p.exists() else p.parent)
    if not base.is_dir():
        raise error(f"{option}: {str(base)!r} is not a folder, so {kind} {text!r} cannot be created there")
    probe = p if (folder and p.exists()) else base
    if not os.access(probe, os.W_OK | os.X_OK):
        raise error(f"{option}: {str(probe)!r} is not writable")
    return p


def make_parents(folder: Path) -> list[Path]:
    """``mkdir -p folder`` (modes from the umask); returns the folders created, outermost first."""
    created = []
    missing = []
    p = folder.absolute()
    while not p.exists():
        missing.append(p)
        p = p.parent
    for q in reversed(missing):
        q.mkdir(mode=0o777)
        created.append(q)
    return created


def remove_created(created: list[Path]) -> None:
    for q in reversed(created):
        with contextlib.suppress(OSError):
            q.rmdir()


def io_error(exc: OSError, target) -> OutputError:
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {str(target)!r}: {reason}; nothing was written")


@contextlib.contextmanager
def atomic_folder(target, *, prefix: str = ".out-"):
    """Yield a temporary folder beside ``target``; on success its entries replace those of
    ``target`` (a new ``target`` appears whole). On any failure nothing is left: neither the
    temporary, nor parents this call created, nor a partial file in ``target``."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    created: list[Path] = []
    tmp = None
    try:
        try:
            created = make_parents(parent)
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private; an output folder is an ordinary one
        except OSError as exc:
            raise io_error(exc, target) from exc
        yield tmp
        try:
            if not target.exists():
                os.rename(tmp, target)
                tmp = None
            else:
                for src in sorted(tmp.iterdir()):
                    dst = target / src.name
                    if src.is_dir() and (dst.exists() or dst.is_symlink()):
                        trash = Path(tempfile.mkdtemp(prefix=".old-", dir=parent))
                        os.replace(dst, trash / src.name)
                        os.replace(src, dst)
                        shutil.rmtree(trash, ignore_errors=True)
                    else:
                        if dst.is_dir() and not dst.is_symlink():
                            shutil.rmtree(dst)
                        os.replace(src, dst)
        except OSError as exc:
            raise io_error(exc, target) from exc
        created = []
    except OSError as exc:
        raise io_error(exc, target) from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        remove_created(created)


@contextlib.contextmanager
def atomic_file(target, *, prefix: str = ".out-"):
    """Yield a temporary file path beside ``target``; renamed onto ``target`` on success, removed
    (with any parents this call created) on failure."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    created: list[Path] = []
    tmp = None
    try:
        try:
            created = make_parents(parent)
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=parent)
            os.close(fd)
            tmp = Path(name)
            os.chmod(tmp, 0o666 & ~umask())
        except OSError as exc:
            raise io_error(exc, target) from exc
        yield tmp
        try:
            os.replace(tmp, target)
            tmp = None
        except OSError as exc:
            raise io_error(exc, target) from exc
        created = []
    except OSError as exc:
        raise io_error(exc, target) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        remove_created(created)


__all__ = ["check_path", "atomic_folder", "atomic_file", "make_parents", "umask"]
