"""``python -m stashhog.settings_docs``: the README's table of variables, made from the
settings model (tests/test_config.py checks the README holds it as printed)."""

from __future__ import annotations

from stashhog.settings import Settings


def _shown_default(name: str) -> str:
    field = Settings.model_fields[name]
    shown = (field.json_schema_extra or {}).get("shown")
    if shown is not None:
        return shown
    value = field.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def markdown_table() -> str:
    """The README's table of variables ."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = field.description
        lines.append(f"| `{field.validation_alias}` | {_shown_default(name)} | {meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
