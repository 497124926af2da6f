"""The `damo` command line: wiring only.

Subcommands live in `damo.commands`; errors they raise are `damo.errors.DamoError`
and are printed here, once, as one line with an exit code.
"""

import sys
from typing import Annotated

import click
import typer

from damo import commands
from damo.errors import DamoError
from damo.process_env import limit_threads

GROUP_HELP = {
    "report": "Turn a record file into text or images.",
}


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="damo",
        help="Data access monitor: record a process's memory access pattern and report it.",
        no_args_is_help=True,
        add_completion=True,  # --install-completion, --show-completion (typer)
        pretty_exceptions_enable=False,
        # Plain click help: rich's formatting costs ~90 ms of imports a `--help`.
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def _version(value: bool) -> None:
        if value:
            from damo.commands.version import text

            print(text())
            raise typer.Exit()

    @app.callback()
    def _root(
        version: Annotated[bool, typer.Option(
            "--version", is_eager=True, callback=_version,
            help="Print damo's version and exit.")] = False,
    ) -> None:
        # A callback keeps typer from promoting a lone command to the whole program.
        pass

    groups: dict[str, typer.Typer] = {}
    for module in commands.load():
        target = app
        if module.GROUP is not None:
            if module.GROUP not in groups:
                groups[module.GROUP] = typer.Typer(
                    no_args_is_help=True,
                    help=GROUP_HELP[module.GROUP],
                    rich_markup_mode=None,
                    context_settings={"help_option_names": ["-h", "--help"]},
                )
                app.add_typer(groups[module.GROUP], name=module.GROUP)
            target = groups[module.GROUP]
        target.command(name=module.NAME)(module.run)
    return app


def main(argv: list[str] | None = None) -> None:
    limit_threads()  # before anything loads numpy
    app = build_app()
    try:
        # Not standalone: errors come back here, to be printed as one line.
        code = app(args=argv, prog_name="damo", standalone_mode=False)
    except click.UsageError as err:
        if not err.format_message():
            sys.exit(err.exit_code)  # `damo` alone: the help was the message
        hint = f" (see '{err.ctx.command_path} -h')" if err.ctx is not None else ""
        print(f"damo: error: {err.format_message()}{hint}", file=sys.stderr)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        print(f"damo: error: {err.format_message()}", file=sys.stderr)
        sys.exit(err.exit_code)
    except DamoError as err:
        print(f"damo: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except (KeyboardInterrupt, click.Abort):
        print("damo: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # The reader of our stdout went away (`damo report raw | head`): not an error.
        sys.stderr.close()
        sys.exit(0)
    sys.exit(code if isinstance(code, int) else 0)

if __name__ == "__main__":
    main()
