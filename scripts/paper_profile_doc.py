"""Write docs/paper-profile.md from config/paper.yaml's own comments (`--check`: exit 1 when it is stale)."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "paper.yaml"
OUT = ROOT / "docs" / "paper-profile.md"
MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()  # what a plain (unquoted) scalar would be read as
PIN = re.compile(r"^(?P<name>[^@\s]+)@(?P<rev>[0-9a-f]{40})$")
INTRO = ("description", "source")  # per experiment: the experiments table, not the settings table
# PyYAML's composer keeps every node's line and column, so each key's trailing comment is read off the text
# (ruamel.yaml is not in the lock). Anchors, aliases and merge keys resolve as YAML resolves them; a merged
# key's comment is the one in the block it was merged from.


@dataclass
class Row:
    path: str
    value: Node
    comment: str


def _comment(lines: list[str], key: Node, value: Node, fallback: str = "") -> str:
    """The `# ...` after a `key: value` (or after `key:` when the value is a block or an alias)."""
    line = key.start_mark.line
    on_line = value.start_mark.line == line and value.end_mark.line == line
    column = value.end_mark.column if on_line else key.end_mark.column
    match = re.search(r"(?:^|\s)#\s?(.*)$", lines[line][column:])
    return match.group(1).strip() if match else fallback


def _comments_above(lines: list[str], node: Node) -> list[str]:
    """The comment lines directly above a node's line, top to bottom."""
    found, line = [], node.start_mark.line - 1
    while line >= 0 and lines[line].lstrip().startswith("#"):
        found.insert(0, lines[line].lstrip()[1:].strip())
        line -= 1
    return found


def entries(node: MappingNode) -> list[tuple[str, Node, Node]]:
    """A mapping's (key, key node, value node), merge keys resolved: explicit keys win, then the first merge."""
    explicit: dict[str, tuple[Node, Node]] = {}
    merged: dict[str, tuple[Node, Node]] = {}
    order: list[str] = []
    for key, value in node.value:
        if key.tag == MERGE_TAG:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                for name, key_node, value_node in entries(source):
                    merged.setdefault(name, (key_node, value_node))
                    order.append(name)
        else:
            explicit[key.value] = (key, value)
            order.append(key.value)
    seen: dict[str, None] = dict.fromkeys(order)
    return [(name, *(explicit.get(name) or merged[name])) for name in seen]


def _merges(node: MappingNode) -> bool:
    return any(key.tag == MERGE_TAG for key, _ in node.value)


def rows(lines: list[str], node: MappingNode, prefix: str = "", skip: tuple[str, ...] = ()) -> list[Row]:
    """One row per setting: block mappings (and flow ones that merge a block) open into dotted paths; other flow
    mappings, sequences and scalars are one row. A row without its own comment takes its block's."""
    found = []
    for name, key, value in entries(node):
        if name in skip:
            continue
        path = f"{prefix}{name}"
        comment = _comment(lines, key, value)
        if isinstance(value, MappingNode) and value.value and (not value.flow_style or _merges(value)):
            for row in rows(lines, value, f"{path}."):
                found.append(Row(row.path, row.value, row.comment or comment))
        elif isinstance(value, SequenceNode) and any(isinstance(item, MappingNode) for item in value.value):
            continue  # records (deviations), tabulated on their own
        else:
            found.append(Row(path, value, comment))
    return found


def render_value(node: Node, short: bool = True) -> str:
    """A value as YAML writes it in flow style; hub revisions shortened to 7 characters."""
    if isinstance(node, MappingNode):
        return "{" + ", ".join(f"{name}: {render_value(value, short)}" for name, _, value in entries(node)) + "}"
    if isinstance(node, SequenceNode):
        return "[" + ", ".join(render_value(item, short) for item in node.value) + "]"
    text = " ".join(str(node.value).split("\n"))
    if node.style in ('"', "'") and (text == "" or _RESOLVER.resolve(ScalarNode, text, (True, False)) != STR_TAG):
        return f'"{text}"'
    pin = PIN.match(text)
    return f"{pin['name']}@{pin['rev'][:7]}" if pin and short else text


def md(text: str) -> str:
    """Table-cell text: pipes escaped, `<` escaped outside code spans (`<id>` is no HTML tag)."""
    parts = text.replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;")
    return "`".join(parts)


def code(text: str) -> str:
    return f"`{text.replace('|', chr(92) + '|')}`"


def cell(node: Node) -> str:
    """A deviation's field: words as text, a single token as code."""
    text = render_value(node)
    return md(text) if isinstance(node, ScalarNode) and " " in text else code(text)


def merged_order(sequences: list[list[str]]) -> list[str]:
    """All names, each sequence's order kept: a name first seen later goes right after its predecessor there."""
    order: list[str] = []
    for sequence in sequences:
        previous = None
        for name in sequence:
            if name not in order:
                order.insert(order.index(previous) + 1 if previous is not None else 0, name)
            previous = name
    return order


def table(header: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(line) + " |" for line in body),
        "",
    ]


def _by_comment(names: list[str], comments: dict[str, str], everyone: bool) -> str:
    """One source for all experiments, or `a, b: source<br>c: source`."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(comments[name], []).append(name)
    if len(groups) == 1 and everyone:
        return md(next(iter(groups)))
    return "<br>".join(f"{', '.join(group)}: {md(comment)}" for comment, group in groups.items() if comment)


def _header(lines: list[str]) -> list[str]:
    """The file's opening comment block: prose as a paragraph, indented lines as a code block."""
    out: list[str] = []
    prose: list[str] = []
    shell: list[str] = []
    for line in lines:
        if not line.startswith("#"):
            break
        body = line[1:]
        if body.startswith("   "):
            shell.append(body.strip())
        else:
            prose.append(body.strip())
    if prose:
        out += [md(" ".join(prose)), ""]
    if shell:
        out += ["```bash", *shell, "```", ""]
    return out


def render(text: str, source: str = "config/paper.yaml") -> str:
    """The whole Markdown page for a paper-style config's text (deterministic: a function of the text only)."""
    lines = text.splitlines()
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, MappingNode):
        raise SystemExit(f"{source}: not a mapping")
    top = {name: (key, value) for name, key, value in entries(root)}
    if "experiments" not in top or not isinstance(top["experiments"][1], MappingNode):
        raise SystemExit(f"{source}: no `experiments` mapping")
    experiments = [(name, value) for name, _, value in entries(top["experiments"][1])]
    names = [name for name, _ in experiments]

    out = [
        "# The paper profile: every setting and its source",
        "",
        f"<!-- Generated by scripts/paper_profile_doc.py from {source} (`make docs`); edit the config's comments,"
        " not this file. -->",
        "",
        f"Generated from the comments of `{source}`; how to run it: [cluster.md](cluster.md).",
        "",
        *_header(lines),
    ]

    # Hub pins: a top-level `_` block of `id@<40-hex commit>` values, the experiments refer to by alias.
    used: dict[int, dict[str, list[str]]] = {}
    experiment_rows = {name: rows(lines, node, skip=INTRO) for name, node in experiments}
    for name, found in experiment_rows.items():
        for row in found:
            used.setdefault(id(row.value), {}).setdefault(name, []).append(code(row.path))
    for block, (key, value) in top.items():
        if not block.startswith("_") or not isinstance(value, MappingNode):
            continue
        pins = entries(value)
        if not pins or not all(isinstance(v, ScalarNode) and PIN.match(str(v.value)) for _, _, v in pins):
            continue
        out += [f"## Hub revisions (`{block}`)", ""]
        caption = _comments_above(lines, key)
        if caption:
            out += [md(" ".join(caption)), ""]
        body = []
        for name, pin_key, pin in pins:
            match = PIN.match(str(pin.value))
            where = "<br>".join(f"{n}: {', '.join(p)}" for n, p in used.get(id(pin), {}).items()) or "–"
            body.append([code(name), code(match["name"]), code(match["rev"]), md(_comment(lines, pin_key, pin)), where])
        out += table(["anchor", "item", "commit", "source", "used as"], body)

    out += ["## Profile-wide settings", ""]
    skip = tuple(name for name in top if name == "experiments" or name.startswith("_"))
    out += table(
        ["setting", "value", "source"],
        [[code(r.path), code(render_value(r.value)), md(r.comment)] for r in rows(lines, root, skip=skip)],
    )

    out += ["## Experiments", ""]
    body = []
    for name, node in experiments:
        fields = {field: value for field, _, value in entries(node)}
        body.append([code(name), *(md(render_value(fields[f])) if f in fields else "–" for f in INTRO)])
    out += table(["experiment", *INTRO], body)

    out += [
        "## Settings per experiment",
        "",
        "Values as the config states them, anchors and merge keys resolved; hub revisions shortened to 7 characters"
        " (full in the table above). A setting an experiment does not state is `–` (the schema's default applies).",
        "",
    ]
    paths = merged_order([[row.path for row in found] for found in experiment_rows.values()])
    by_path = {name: {row.path: row for row in found} for name, found in experiment_rows.items()}
    body = []
    for path in paths:
        having = [name for name in names if path in by_path[name]]
        values = [code(render_value(by_path[name][path].value)) if name in having else "–" for name in names]
        comments = {name: by_path[name][path].comment for name in having}
        body.append([code(path), *values, _by_comment(having, comments, len(having) == len(names))])
    out += table(["setting", *(code(name) for name in names), "source"], body)

    records = []
    for name, node in experiments:
        fields = {field: value for field, _, value in entries(node)}
        if isinstance(fields.get("deviations"), SequenceNode):
            records += [(name, item) for item in fields["deviations"].value if isinstance(item, MappingNode)]
    if records:
        columns = merged_order([[field for field, _, _ in entries(item)] for _, item in records])
        out += [
            "## Deviations",
            "",
            "Where faithful and sound disagree the config stays faithful; `--config apply_sound_settings=true` runs"
            " each `sound` value instead, and the report's Deviations section says which ran.",
            "",
        ]
        body = []
        for name, item in records:
            fields = {field: value for field, _, value in entries(item)}
            body.append([code(name), *(cell(fields[c]) if c in fields else "–" for c in columns)])
        out += table(["experiment", *columns], body)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 when --out differs from what it would write")
    args = parser.parse_args(argv)
    try:
        source = str(args.config.resolve().relative_to(ROOT))
    except ValueError:
        source = str(args.config)
    text = render(args.config.read_text(encoding="utf-8"), source)
    if args.check:
        if not args.out.is_file() or args.out.read_text(encoding="utf-8") != text:
            shown = args.out.resolve().relative_to(ROOT) if args.out.resolve().is_relative_to(ROOT) else args.out
            print(f"{shown} is stale: regenerate it with `make docs` (python scripts/paper_profile_doc.py)")
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
