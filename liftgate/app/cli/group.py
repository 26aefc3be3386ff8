"""The Typer classes every `liftgate` command group and command is built from.

- Help is Markdown: a docstring's paragraphs flow to the terminal's width, and a command's
  "Examples:" list shows real invocations. A group shows its help when called bare.
- A flag takes no value, so its help shows no value type (Typer would print ``<bool>``).
- A command ends an expected failure (see `liftgate.app.cli.common.failure_of`) with its
  message and exit code, and under `--json` with the ``{"error", "exit_code"}`` document on
  stdout, whether the failure is a bad option value or an error of the code it calls.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from liftgate.app.cli.common import failure_of, print_error_document

JSON_FLAG = "--json"


def _flags_without_type(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # what Typer's help prints as the value's type
    return params


class Group(TyperGroup):
    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))


class Command(TyperCommand):
    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        words = list(args)  # the parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:  # a bad option value, a missing argument …
            if JSON_FLAG in words:  # the options are not parsed: the word is what we have
                print_error_document(exc.format_message(), exc.exit_code)
            raise  # Typer prints the usage and the message on stderr, and exits 2

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            flags = {param.name: param.opts[0] for param in self.params if param.opts}
            failure = failure_of(exc, flags)
            if failure is None:
                raise
            as_json = any(ctx.params.get(p.name) for p in self.params if JSON_FLAG in p.opts)
            failure.report(as_json)
            raise typer.Exit(failure.exit_code) from None


class CommandGroup(typer.Typer):
    """A group of `liftgate` commands, made of `Group` and `Command`.

    Added to another group without a name, its commands join that group's.
    """

    def __init__(self, help: str | None = None, **settings: Any):
        super().__init__(
            cls=Group,
            help=help,
            no_args_is_help=True,
            rich_markup_mode="markdown",
            add_completion=False,
            pretty_exceptions_enable=False,
            **settings,
        )

    def command(self, name: str | None = None, **settings: Any) -> Any:
        return super().command(name, cls=Command, **settings)
