"""The one path guard for every file the pack reads or writes (nodes/ and agent/ both use it).

Any browser user can queue a graph, so every name that reaches a file operation
is untrusted: load names, save prefixes, run ids. The rules, in one place:

- a name is relative: no absolute part, no `..`, no NUL, and after resolving
  (symlinks included) it stays inside its root;
- a new file is created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0644, so nothing
  is overwritten and a planted symlink is never followed;
- temp and `.part` names are random (never a fixed name an attacker can plant)
  and are removed on failure, and at process exit or SIGTERM when registered;
- records are read through `read_inside`: no symlink, bounded size.
"""
from __future__ import annotations

import atexit
import os
import secrets
import stat
import threading
from pathlib import Path, PurePosixPath

FILE_MODE = 0o644


class PathRefused(PermissionError):
    """A name that would leave its folder, follow a symlink out of it, or overwrite a file."""


def _parts(name, what: str) -> tuple[str, ...]:
    """The components of a relative name; PathRefused for absolute, `..` or NUL names."""
    if not isinstance(name, (str, os.PathLike)):
        raise ValueError(f"{what} must be a text name; got {type(name).__name__}.")
    text = os.fspath(name)
    if not text.strip():
        raise ValueError(f"{what} is empty.")
    if "\x00" in text:
        raise PathRefused(f"{what} {text!r} contains a NUL character.")
    posix = PurePosixPath(text.replace("\\", "/"))
    if posix.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise PathRefused(f"{what} {text!r} is an absolute path; give a name relative to its folder.")
    if ".." in posix.parts:
        raise PathRefused(f"{what} {text!r} contains '..'; a name must stay inside its folder.")
    return tuple(p for p in posix.parts if p not in ("", "."))


def inside(root, path) -> bool:
    """True when `path` (resolved, symlinks followed) is `root` or lies under it."""
    root, path = Path(root).resolve(), Path(path).resolve()
    return path == root or root in path.parents


def safe_join(root, relative, *, what: str = "file name") -> Path:
    """root/relative resolved; refused when relative is absolute, has `..` or NUL, or a symlink leads out."""
    base = Path(root).resolve()
    path = base.joinpath(*_parts(relative, what)).resolve()
    if not inside(base, path):
        raise PathRefused(f"{what} {os.fspath(relative)!r} leads outside {base} (through a symlink).")
    return path


def resolve_inside(root, name, *, what: str = "file") -> Path:
    """An existing file named relative to root (or an absolute path already inside it); refused elsewhere."""
    base = Path(root).resolve()
    if not isinstance(name, (str, os.PathLike)) or not os.fspath(name):
        raise ValueError("No file name given.")
    text = os.fspath(name)
    if "\x00" in text:
        raise PathRefused(f"{what} {text!r} contains a NUL character.")
    path = Path(text)
    path = (path if path.is_absolute() else base / path).resolve()
    if not inside(base, path):
        raise PathRefused(f"File {text!r} is outside the {what} folder {base}; only files inside it can be read.")
    if not path.is_file():
        raise FileNotFoundError(f"File {text!r} not found in the {what} folder {base}.")
    return path


def open_exclusive(path, mode: int = FILE_MODE) -> int:
    """A new file's descriptor (write only); FileExistsError if the name exists, even as a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not make records group-writable or executable
    except OSError:
        pass
    return fd


def _make_folder(base: Path, parts: tuple[str, ...], what: str) -> Path:
    """base/parts..., created as needed; an existing symlink is only followed when it stays inside base."""
    folder = base
    for part in parts:
        folder = folder / part
        if folder.is_symlink() or folder.exists():
            if not inside(base, folder):
                raise PathRefused(f"{what}: the folder {part!r} is a symlink leading outside {base}.")
            if not folder.is_dir():
                raise PathRefused(f"{what}: {part!r} exists and is not a folder.")
            continue
        try:
            folder.mkdir()
        except FileExistsError:  # created meanwhile: check it again as above
            if not inside(base, folder) or not folder.is_dir():
                raise PathRefused(f"{what}: the folder {part!r} is not a folder inside {base}.") from None
    return folder


def clean_stem(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).lstrip(".") or "output"


def save_prefix(root, prefix, *, node: str, input: str = "filename_prefix") -> tuple[Path, str]:
    """(folder inside root, file stem) for a save node's prefix such as 'animation_studio/video'.

    `..`, absolute parts and NUL are refused with the node and input named (a
    prefix like 'x/../../../tmp/evil' must not be "cleaned" into something else);
    folders are created inside root and a symlinked folder leading out is refused.
    """
    what = f"{node}: input '{input}'"
    parts = _parts(prefix, what)  # its errors name the node and the input
    if not parts:
        raise ValueError(f"{what} {prefix!r} has no file name.")
    base = Path(root).resolve()
    base.mkdir(parents=True, exist_ok=True)
    return _make_folder(base, parts[:-1], what), clean_stem(parts[-1])


def reserve_new(folder, stem: str, suffix: str) -> Path:
    """folder/<stem>_00001<suffix> (the first free number), created empty and exclusively (mode 0644)."""
    folder = Path(folder)
    for counter in range(1, 10_000_000):
        path = folder / f"{stem}_{counter:05d}{suffix}"
        try:
            os.close(open_exclusive(path))
            return path
        except FileExistsError:
            continue
    raise PathRefused(f"No free file name for {stem}{suffix} in {folder}.")


def save_path(root, prefix, suffix: str, *, node: str, input: str = "filename_prefix") -> Path:
    """A reserved (empty, exclusively created) file for a save node: save_prefix + reserve_new."""
    folder, stem = save_prefix(root, prefix, node=node, input=input)
    return reserve_new(folder, stem, suffix)


def new_random_file(folder, prefix: str, suffix: str) -> Path:
    """A new empty file folder/<prefix><random><suffix> (mode 0644): a name nobody can plant in advance."""
    folder = Path(folder)
    for _ in range(100):
        candidate = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(open_exclusive(candidate))
            return candidate
        except FileExistsError:
            continue
    raise PathRefused(f"Cannot create a new file in {folder}.")


def temp_sibling(path, tag: str = "part") -> Path:
    """A new empty file next to `path` with a random name (.<name>.<random>.<tag><suffix>)."""
    path = Path(path)
    return new_random_file(path.parent, f".{path.stem}.", f".{tag}{path.suffix}")


def replace_reserved(part, path) -> None:
    """Move a finished temp file onto its reserved name, which must still be an empty regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and (not stat.S_ISREG(info.st_mode) or info.st_size > 0):
        raise FileExistsError(f"{path} already exists; it is never overwritten.")
    os.replace(part, path)


def write_new(path, data: bytes | str) -> Path:
    """Write a file that must not exist yet: a random temp sibling, then a hard link (atomic, no overwrite).

    A name that exists in any form, a symlink included, raises FileExistsError; the temp name is removed.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    part = temp_sibling(path)
    try:
        with open(part, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(part, path, follow_symlinks=False)
    finally:
        part.unlink(missing_ok=True)
    return path


def read_inside(root, path, *, max_bytes: int | None = None) -> tuple[bytes, bool]:
    """(bytes, complete) of a regular file inside root, never through a symlink; at most max_bytes are read.

    `complete` is False when the file is longer than max_bytes (the caller gets a bounded prefix).
    """
    base, path = Path(root).resolve(), Path(path)
    if path.is_symlink():
        raise PathRefused(f"{path.name} is a symlink; records are never read through one.")
    if not inside(base, path):
        raise PathRefused(f"{path} is outside {base}.")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise PathRefused(f"{path.name} is not a regular file.")
        if max_bytes is None:
            return fh.read(), True
        data = fh.read(max_bytes + 1)
    return data[:max_bytes], len(data) <= max_bytes


# ---------------------------------------------------------------- temp files of this process
_temp_lock = threading.Lock()
_temp_files: set[str] = set()
_exit_hooked = False


def register_temp(path) -> Path:
    """Remember an intermediate file so `remove_temp_files` (at exit, on SIGTERM) deletes it."""
    with _temp_lock:
        _temp_files.add(os.fspath(path))
    return Path(path)


def remove_temp_files() -> int:
    """Delete every registered temp file still there; the number removed."""
    with _temp_lock:
        names = list(_temp_files)
        _temp_files.clear()
    removed = 0
    for name in names:
        try:
            os.unlink(name)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError:
            continue
    return removed


def clean_temp_on_exit() -> None:
    """For command-line processes: remove registered temp files at exit and turn SIGTERM into a normal exit.

    SystemExit unwinds the stack, so every `finally` that removes a `.part`
    file runs before the atexit hook removes the intermediate videos.
    """
    import signal

    global _exit_hooked
    if _exit_hooked:
        return
    _exit_hooked = True
    atexit.register(remove_temp_files)
    if threading.current_thread() is not threading.main_thread():
        return

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, on_term)
