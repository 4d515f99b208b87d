"""A throw-away PostgreSQL server on a local port, for the tests of searches that share a study
(tests/hpsearch/test_postgres.py). PostgreSQL refuses to run as root: as root the server runs as
the unprivileged user ``postgres`` (created if missing).

    python3 tests/postgres_server.py start DIR   # prints the URL: postgresql://tiefnet:PASSWORD@127.0.0.1:PORT/postgres
    python3 tests/postgres_server.py stop DIR

.ci/run starts one and exports its URL as TIEFNET_TEST_POSTGRES; without it, the tests start their own
where PostgreSQL is installed, and skip where it is not.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

SEARCH = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin")
USER = "postgres"


def binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in SEARCH:
        if (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    return None


def _as_server_user(command: list[str]) -> list[str]:
    """Root runs the server's commands as the unprivileged user (created if missing)."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", USER], check=True, capture_output=True)
    return ["runuser", "-u", USER, "--", *command]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: str | Path) -> str:
    """Create a cluster in ``folder`` and start its server; the URL of its database."""
    initdb, pg_ctl = binary("initdb"), binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise FileNotFoundError("PostgreSQL's initdb and pg_ctl are not installed")
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(16)  # the server listens on 127.0.0.1: other local users need the password
    pwfile = folder / "password"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        temp = Path(tempfile.gettempdir()).resolve()
        for parent in folder.parents:  # the server user must reach the folder: only below the temp folder
            if parent.stat().st_mode & 0o001 == 0:
                if parent != temp and temp not in parent.parents:
                    raise OSError(f"{parent} is closed to other users: give a folder under {temp}")
                os.chmod(parent, parent.stat().st_mode | 0o001)
        _as_server_user([])  # creates the user where it is missing
        server = pwd.getpwnam(USER)
        os.chown(folder, server.pw_uid, server.pw_gid)
        os.chown(pwfile, server.pw_uid, server.pw_gid)
    pwfile.chmod(0o600)
    data, port = folder / "data", _free_port()
    subprocess.run(_as_server_user([initdb, "-D", str(data), "-A", "scram-sha-256", "-U", "tiefnet",
                                    f"--pwfile={pwfile}", "--no-sync"]), check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
    subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "server.log"),
                                    "-w", "-t", "60", "start"]), check=True, capture_output=True)
    return f"postgresql://tiefnet:{password}@127.0.0.1:{port}/postgres"


def stop(folder: str | Path) -> None:
    pg_ctl = binary("pg_ctl")
    data = Path(folder).resolve() / "data"
    if pg_ctl and data.is_dir():
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: postgres_server.py start|stop DIR")
    if sys.argv[1] == "start":
        try:
            print(start(sys.argv[2]))
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", b"") or b""
            sys.exit(f"postgres_server.py: cannot start PostgreSQL: {error} {detail.decode(errors='replace')[-500:]}")
    else:
        stop(sys.argv[2])
