"""A throwaway PostgreSQL server for a test: a fresh cluster in a temporary folder, reached
through a unix socket in that folder only (no TCP), stopped and removed afterwards.

PostgreSQL refuses to run as root; as root (CI) the cluster belongs to the `postgres` system
user when there is one, else to `nobody`, and its commands run through `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _as_user() -> tuple[list[str], str | None]:
    """The command prefix that runs as the cluster's owner, and that owner (None: this user)."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root without runuser: cannot start PostgreSQL")
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            return [runuser, "-u", user, "--"], user
    raise RuntimeError("running as root with neither a postgres nor a nobody user")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield its SQLAlchemy URL (database `postgres`, user `megalith`).

    Raises:
        RuntimeError: the server binaries are missing or the server does not start.
    """
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    prefix, owner = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="megalith-pg-", dir="/tmp"))
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = folder / "data", random.randint(20000, 60000)

    def run(*command: str) -> None:
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, cwd=folder
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-500:]}")

    try:
        run(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "megalith",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        options = f"-p {port} -k {folder} -c listen_addresses='' -c fsync=off"
        run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        )
        try:
            yield f"postgresql+psycopg2://megalith@/postgres?host={folder}&port={port}"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
