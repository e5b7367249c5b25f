"""The ``kari-debug`` command group: global options, the store, errors and hints for people."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

import click

from ..backends import StoreLocation, location_exists, parse_location, redact
from ..exceptions import ConfigurationError, KariDebugError, StoreError
from ..optionspec import OptionSpec
from ..sharedmethods import dataclass
from ..sources import StoreSource
from ..storage import DEFAULT_STORE, Store
from ..version import plugin_version
from .render import to_json

PROG = "kari-debug"
_Command = TypeVar("_Command", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class CliError(KariDebugError):
    """A problem the user can fix: one line on stderr and exit status *code* (2 by default)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _error(message: str) -> None:
    click.echo(f"{PROG}: error: {message}", err=True)


class KariGroup(click.Group):
    """A group whose errors are one line on stderr (``kari-debug: error: ...``), no traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = self.run(args, prog_name=prog_name or PROG, complete_var=complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def run(self, args: Sequence[str] | None, **kwargs: Any) -> int:
        """Run the command line *args*; return the exit status."""
        kwargs.setdefault("prog_name", PROG)
        try:
            result = super().main(args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            return int(exc.exit_code)
        except click.ClickException as exc:
            where = exc.ctx.command_path if getattr(exc, "ctx", None) else PROG  # type: ignore[attr-defined]
            _error(f"{exc.format_message()} (see `{where} --help`)")
            return 2 if isinstance(exc, click.UsageError) else exc.exit_code
        except (click.Abort, KeyboardInterrupt):
            click.echo("", err=True)
            return 130
        except CliError as exc:
            _error(str(exc))
            return exc.code
        except StoreError as exc:
            _error(str(exc).replace("--kari-store", "--store"))
            return 2
        except sqlite3.DatabaseError as exc:
            _error(
                f"the store cannot be read ({exc}); it may be corrupt: move it away and record"
                " again with `pytest --kari-debug`, or pass --store PATH"
            )
            return 2
        except KariDebugError as exc:
            _error(str(exc))
            return 2
        except BrokenPipeError:  # `kari-debug logs show | head`: the reader left; fine
            _silence_stdout()
            return 0
        except Exception as exc:
            if os.environ.get("KARI_DEBUG_TRACEBACK") == "1":
                raise
            _error(
                f"internal error {type(exc).__name__}: {exc} (set KARI_DEBUG_TRACEBACK=1 to see"
                " where; please report it)"
            )
            return 2
        return int(result) if isinstance(result, int) else 0


def _silence_stdout() -> None:
    """Point stdout at the null device so the interpreter's final flush cannot fail again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def find_rootdir(cwd: Path) -> Path:
    """The rootdir pytest picks when started in *cwd* without arguments, by pytest's own
    search (ini files, ``pyproject.toml``, ``setup.py``...), so the CLI reads the store the
    plugin wrote."""
    import inspect

    from _pytest.config.findpaths import determine_setup  # private, but the one true search

    wanted: dict[str, Any] = {
        "inifile": None,
        "args": [str(cwd)],
        "rootdir_cmd_arg": None,
        "invocation_dir": cwd,
        "override_ini": None,
        "config": None,
    }
    accepted = inspect.signature(determine_setup).parameters  # it changes between versions
    rootdir = determine_setup(**{k: v for k, v in wanted.items() if k in accepted})[0]
    return Path(rootdir)


def default_store_path(cwd: Path | None = None) -> Path:
    """The store the plugin writes by default: ``.kari-debug/kari.db`` under the rootdir."""
    here = (cwd or Path.cwd()).resolve()
    root = find_rootdir(here) / DEFAULT_STORE
    local = here / DEFAULT_STORE
    return local if not root.exists() and local.exists() else root


@dataclass
class Scope:
    """What a command reads: the store, the extension (or all) and the run (or all)."""

    store: Store
    extension_id: str | None
    run_id: int | None
    run: dict[str, Any] | None

    @property
    def source(self) -> StoreSource:
        """The records in scope, read as the dashboard and the API read them."""
        return StoreSource(self.store, self.extension_id, self.run_id)


@dataclass
class Env:
    """The global options of one invocation."""

    store_path: StoreLocation
    extension_id: str | None
    run: str | None
    fmt: str
    color: bool | None
    _store: Store | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.fmt == "json"

    def echo(self, text: str = "") -> None:
        """Print *text* on stdout (colour only where the terminal supports it)."""
        click.echo(text, color=self.color)

    def emit(self, data: Any) -> None:
        """Print *data* as JSON on stdout."""
        click.echo(to_json(data))

    def answer(self, data: Any, text: str) -> int:
        """*data* as JSON (``--format json``), else *text* for people; exit status 0."""
        if self.json:
            self.emit(data)
        else:
            self.echo(text)
        return 0

    def hint(self, text: str) -> int:
        """A one-line hint on stderr (``null`` on stdout for JSON readers); exit status 0."""
        click.echo(f"{PROG}: {text}", err=True)
        if self.json:
            click.echo("null")
        return 0

    @property
    def files_path(self) -> Path:
        """The SQLite store, or for a database server the default file's place: the live
        managers keep their files beside it."""
        return self.store_path if isinstance(self.store_path, Path) else default_store_path()

    def open_store(self, *, create: bool = False) -> Store | None:
        """The store (made when *create*), or ``None`` when it does not exist yet."""
        if self._store is None:
            if not create and not location_exists(self.store_path):
                return None
            self._store = Store(self.store_path, create=create)
        return self._store

    def source(self, extension_id: str | None = None) -> StoreSource | None:
        """What the store recorded for *extension_id* (``None``: every extension), or
        ``None`` when there is no store yet."""
        store = self.open_store()
        return None if store is None else StoreSource(store, extension_id)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def no_store_hint(self) -> int:
        return self.hint(
            f"no data yet: no store at {redact(self.store_path)!r}; record some with"
            " `pytest --kari-debug` (or pass --store PATH)"
        )

    def scope(self, *, need_run: bool = False) -> Scope | None:
        """The data this invocation reads; ``None`` after printing a no-data hint."""
        store = self.open_store()
        if store is None:
            self.no_store_hint()
            return None
        everything = StoreSource(store)
        extension = self.extension_id
        if extension is not None and everything.has_extension(extension):
            known = [extension]
        else:
            known = everything.extensions()
        if extension is None and len(known) == 1:
            extension = known[0]
        if extension is not None and extension not in known:
            have = f" (the store has: {', '.join(known)})" if known else ""
            self.hint(
                f"no data yet for extension {extension!r}{have}; record some with"
                f" `pytest --kari-debug --kari-extension-id {extension}`"
            )
            return None
        if not known:
            self.no_store_hint()
            return None
        run = None
        text = self.run or ("last" if need_run else None)
        if text is not None:
            run = StoreSource(store, extension).find_run(text)
            if run is None:
                if self.run is None:
                    self.hint(
                        f"no test run recorded for {extension or 'any extension'!r} yet;"
                        " record one with `pytest --kari-debug`"
                    )
                    return None
                msg = f"run {text!r} not found; see `{PROG} runs list` (or use --run last)"
                raise CliError(msg)
        return Scope(store, extension, run["id"] if run else None, run)


def require_extension(env: Env, what: str) -> str:
    """The --extension-id value, which *what* cannot do without."""
    if not env.extension_id:
        msg = f"{what} needs an extension: pass --extension-id ID before the command"
        raise CliError(msg)
    return env.extension_id


@click.group(cls=KariGroup, context_settings=CONTEXT)
@click.option(
    "--extension-id",
    "-e",
    envvar="KARI_DEBUG_EXTENSION_ID",
    metavar="ID",
    help="Extension to show (default: the only one in the store, else all of them)",
)
@click.option(
    "--store",
    "store",
    envvar="KARI_DEBUG_STORE",
    metavar="PATH|URL",
    callback=lambda _ctx, _param, value: _store_option(value),
    help="SQLite file (default: .kari-debug/kari.db under the rootdir pytest would pick) or"
    " postgresql://user@host:port/db",
)
@click.option(
    "--run",
    "run",
    metavar="RUN_ID|last",
    help="Only this run: its id, uuid, 'last' or 'last~N' (default: every run)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Tables for people or JSON (stable keys) for machines",
)
@click.option("--no-color", is_flag=True, help="No colour, even on a terminal (also: NO_COLOR)")
@click.version_option(plugin_version(), prog_name=PROG)
@click.pass_context
def cli(
    ctx: click.Context,
    extension_id: str | None,
    store: StoreLocation | None,
    run: str | None,
    fmt: str,
    no_color: bool,
) -> None:
    """Show what pytest-kari-debug recorded: logs, metrics, errors, alerts, runs, health.

    Reads the SQLite store that `pytest --kari-debug` writes, runs a live debug manager in
    the background, exports data, and gates merges with `compare`.

    \b
    Examples:
      kari-debug --extension-id my-ext status
      kari-debug --extension-id my-ext logs show --level error --limit 50
      kari-debug --extension-id my-ext start
      kari-debug runs list
      kari-debug compare last~1 last --fail "duration:+25%,allocated:+10%"
    """
    no_colour = no_color or bool(os.environ.get("NO_COLOR"))
    env = Env(
        store_path=store if store is not None else default_store_path(),
        extension_id=extension_id or None,
        run=run,
        fmt=fmt,
        color=False if no_colour else None,
    )
    ctx.obj = env
    ctx.call_on_close(env.close)


pass_env = click.make_pass_decorator(Env)


def _store_option(value: str | None) -> StoreLocation | None:
    if value is None or not str(value).strip():
        return None
    try:
        location = parse_location(str(value).strip(), source="--store")
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc).removeprefix("--store: ")) from None
    if isinstance(location, Path) and location.is_dir():
        msg = f"{str(location)!r} is a directory; give the path of the store file"
        raise click.BadParameter(msg)
    return location


def spec_option(
    spec: OptionSpec, dest: str | None = None, **changes: Any
) -> Callable[[_Command], _Command]:
    """The click option of *spec*, an option the plugin has too (as ``--kari-<name>``):
    same help, default and accepted values. *changes* override click's arguments."""
    kind: Any = None
    if spec.kind is int:
        kind = click.IntRange(min=spec.minimum, max=spec.maximum)  # type: ignore[arg-type]
    elif spec.kind is float:
        kind = click.FloatRange(min=spec.minimum, max=spec.maximum)
    arguments: dict[str, Any] = {
        "type": kind,
        "default": spec.default,
        "show_default": spec.default is not None,
        "metavar": spec.metavar,
        "help": f"{spec.help} ({spec.accepted})" if spec.accepted else spec.help,
        **changes,
    }
    return click.option(spec.cli, dest or spec.name, **arguments)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kari-debug`` with *argv* (default: the command line); return the exit status."""
    return cli.run(list(argv) if argv is not None else None)
