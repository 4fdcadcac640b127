"""docs/config.md, rendered from the config schema: `python -m rlaif_sql.config_docs >
docs/config.md` (tests/test_config.py fails when the file and the schema drift)."""

from __future__ import annotations

from rlaif_sql.config_schema import backend_kinds, schema, toml_value


def render_docs() -> str:
    """docs/config.md: every section and key of the pipeline TOML."""
    lines = [
        "# The pipeline config: every section and key",
        "",
        "Generated from `rlaif_sql/config_schema.py` by `python -m rlaif_sql.config_docs > "
        "docs/config.md`; `tests/test_config.py` fails when this file and the schema drift.",
        "Relative paths resolve against the config file's folder. A misspelled section or key, "
        "or a value of the wrong type, is refused with one line naming the file, the key, "
        "what was expected and the fix, before any model loads. "
        "`examples/revenue/pipeline.toml` is an annotated example.",
        "",
    ]
    for section in schema().values():
        header = f"[[{section.name}]]" if section.name == "judge.tiers" else f"[{section.name}]"
        lines += [f"## `{header}`: {section.help}", "", "| key | type | default | meaning |",
                  "|---|---|---|---|"]  # fmt: skip
        for key in section.keys:
            default = "required" if key.required else (
                "unset" if key.default is None or (key.optional and not key.default)
                else f"`{toml_value(key.default)}`")  # fmt: skip
            lines.append(f"| `{key.name}` | {key.label} | {default} | {key.help} |")
        if section.name.endswith((".backend", ".tiers")):
            lines.append("")
            lines.append("Keys per kind: " + "; ".join(
                f"`{kind}`: " + ", ".join(k.name + (" (required)" if k.required else "")
                                          for k in keys)
                for kind, keys in backend_kinds().items()) + ".")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_docs(), end="")
