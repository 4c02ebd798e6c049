"""MkDocs hooks of the docs site (mkdocs.yml ``hooks:``): the CLI reference is generated from the Typer app on
every build, so it cannot drift from the commands."""

from __future__ import annotations

import re

MARKER = "<!-- cli-reference -->"


def _cell(text: str) -> str:
    # escaped so that "[default: auto]" is not read as a link reference
    text = " ".join(str(text).split())
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def _param_rows(command, ctx) -> list[str]:
    """One table row per argument and option, as the command's own ``--help`` words them (its help record:
    the declaration, then the help with its default and range)."""
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        record = param.get_help_record(ctx)
        if record is None:  # an argument without help text
            record = (param.name.upper(), "")
        declaration, text = record
        rows.append(f"| `{_cell(declaration)}` | {_cell(text)} |")
    return rows


def _command_markdown(command, ctx, depth: int) -> list[str]:
    path = ctx.command_path
    lines = [f"{'#' * min(depth, 4)} `{path}`", ""]
    if command.help:
        lines += [command.help.replace("\b\n", "").strip(), ""]
    # Typer writes arguments as {name}; the usage line of --help writes NAME
    usage = [
        re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), piece)
        for piece in command.collect_usage_pieces(ctx)
    ]
    lines += ["```text", f"{path} {' '.join(usage)}".rstrip(), "```", ""]
    rows = _param_rows(command, ctx)
    if rows:
        lines += ["| argument or option | what it does |", "|---|---|", *rows, ""]
    if hasattr(command, "list_commands"):  # a group (Typer's own copy of click: duck-typed)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            lines += _command_markdown(sub, sub.context_class(sub, info_name=name, parent=ctx), depth + 1)
    return lines


def cli_reference() -> str:
    """Markdown for every ``proactiv`` command and sub-command, read from the Typer app."""
    import typer.main

    from proactiv.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="proactiv")
    return "\n".join(_command_markdown(root, ctx, 2))


def on_page_markdown(markdown: str, page, **_):
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
