"""``jaxppo config show``: the resolved config (file, bundled name or default, plus --set) as YAML."""

from __future__ import annotations

import argparse
from typing import Any

from jaxppo.cli.common import DEFAULT_CONFIG, UsageError, resolve_config


def add_parser(commands: Any) -> None:
    config = commands.add_parser(
        "config", help="show the resolved config as YAML",
        description="jaxppo config show [CONFIG] [--set key=value ...]: print the config that\n"
                    "'jaxppo train' with the same arguments would train, every field resolved, as YAML\n"
                    "(save it, edit it, train it).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = config.add_subparsers(dest="config_action", metavar="ACTION", required=True,
                                    parser_class=type(config))
    show = actions.add_parser("show", help="print the resolved config as YAML",
                              description="Print CONFIG with --set overrides applied, every field resolved.")
    show.add_argument("config", nargs="?", metavar="CONFIG",
                      help=f"YAML file or bundled config name (default: {DEFAULT_CONFIG})")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config field (repeatable)")
    show.add_argument("--explain", action="store_true",
                      help="comment every field with its one-line meaning and unit")
    config.set_defaults(handler=run)


def resolved_yaml(config_arg: Any, overrides: list[str], explain: bool = False) -> str:
    """The YAML text of the resolved config, headed by a comment saying where it came from; with
    ``explain``, each field's line ends with its meaning and unit as a YAML comment."""
    import yaml

    from jaxppo.config import apply_overrides, config_to_dict

    try:
        config, name = resolve_config(config_arg)
        if overrides:
            config = apply_overrides(config, list(overrides))
    except ValueError as error:
        raise UsageError(str(error)) from None
    header = f"# {name}" + (f" with --set {' --set '.join(overrides)}" if overrides else "") + "\n"
    data = config_to_dict(config)
    if not explain:
        return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    # The run settings as a block, one per line, so each can carry its own comment.
    run = data.pop("run")
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None) + "run:\n" + "".join(
        f"  {line}\n" for line in yaml.safe_dump(run, sort_keys=False, default_flow_style=False).splitlines())
    return header + _explained(text, config.algorithm)


def _explained(text: str, algorithm: str) -> str:
    """``text`` with ``  # meaning`` after every top-level and ``run:`` field line."""
    from jaxppo.config_help import RUN, help_for

    lines = []
    for line in text.splitlines():
        key = line.strip().split(":", 1)[0]
        meaning = RUN.get(key, "") if line.startswith("  ") else help_for(algorithm, key)
        if key == "run":
            meaning = ""  # its fields say it line by line
        lines.append(f"{line}  # {meaning}" if meaning and ":" in line else line)
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    print(resolved_yaml(args.config, args.overrides, explain=args.explain), end="")
    return 0
