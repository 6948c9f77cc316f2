"""Statements and beam lines of MAD-like lattice files (Bmad, elegant), with line numbers.

Both codes write ``label: type, attr = value, ...`` and ``label: line = (items)``, with ``!``
comments and ``&`` continuations; a line item may be ``name``, ``-name`` (the line in
reverse order), ``n*name`` or ``n*(a, b)``. Every error names the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import LatticeError

__all__ = ["Statement", "expand_line", "parse_items", "split_attributes", "statements"]


@dataclass
class Statement:
    """One statement: its text (comments removed, continuations joined) and first line."""

    text: str
    line: int


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for ch in line:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "!":
            break
        out.append(ch)
    return "".join(out)


def statements(text: str, path: str, auto_continue: str = "") -> list[Statement]:
    """Split ``text`` into statements; ``&`` at a line end (or any of ``auto_continue``) joins."""
    out: list[Statement] = []
    buf, start = "", 0
    for no, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not buf:
            start = no
        if line.endswith("&"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip() and auto_continue and buf.rstrip()[-1] in auto_continue:
            buf += " "
            continue
        if buf.strip():
            for part in _split_semicolons(buf):
                out.append(Statement(part, start))
        buf = ""
    if buf.strip():
        raise LatticeError(f"{path}, line {start}: the file ends inside a continued statement")
    return out


def _split_semicolons(text: str) -> list[str]:
    return [p.strip() for p in text.split(";") if p.strip()]


def split_attributes(text: str, where: str) -> list[str]:
    """Split ``a = 1, b = f(x, y), c = "1 2 +"`` at top-level commas."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise LatticeError(f"{where}: unbalanced ')'")
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if depth or quote:
        raise LatticeError(f"{where}: unbalanced parentheses or quotes")
    if cur.strip():
        parts.append(cur.strip())
    return parts


_ITEM = re.compile(r"^(-?)\s*(?:(\d+)\s*\*\s*)?(-?)\s*(.+)$", re.S)


def parse_items(text: str, where: str) -> list:
    """The items of ``(a, -b, 3*c, 2*(d, e))``: ``(sign, count, name or nested list)``."""
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise LatticeError(f"{where}: a line is written '(item, item, ...)', got {text!r}")
    items = []
    for part in split_attributes(text[1:-1], where):
        m = _ITEM.match(part)
        if m is None or not m.group(4).strip():
            raise LatticeError(f"{where}: cannot read line item {part!r}")
        reverse = bool(m.group(1)) != bool(m.group(3))
        count = int(m.group(2) or 1)
        body = m.group(4).strip()
        target = parse_items(body, where) if body.startswith("(") else body.lower()
        if isinstance(target, str) and not re.fullmatch(r"[\w.#$:\-]+", target):
            raise LatticeError(f"{where}: cannot read line item {part!r}")
        items.append((reverse, count, target))
    return items


def expand_line(name: str, lines: dict, known, where: dict, stack=()) -> list[str]:
    """Element names of line ``name``, nested lines, repeats and reflections expanded."""
    if name in stack:
        raise LatticeError(f"{where[name]}: line '{name}' contains itself")
    return _expand_items(lines[name], lines, known, where, stack + (name,), where[name])


def _expand_items(items, lines, known, where, stack, at) -> list[str]:
    out: list[str] = []
    for reverse, count, target in items:
        if isinstance(target, list):
            sub = _expand_items(target, lines, known, where, stack, at)
        elif target in lines:
            sub = expand_line(target, lines, known, where, stack)
        elif target in known:
            sub = [target]
        else:
            raise LatticeError(f"{at}: line item '{target}' is neither an element nor a line "
                               "defined in the file")
        if reverse:
            sub = sub[::-1]
        out += sub * count
    return out


# ---------------------------------------------------------------------------------------- build
def resolve_type(word: str, table: dict, where: str) -> str:
    """A code's element type from an exact name or a unique abbreviation (both codes allow them)."""
    if word in table:
        return word
    hits = [k for k in table if k.startswith(word)] if len(word) >= 3 else []
    if len(hits) == 1:
        return hits[0]
    raise LatticeError(f"{where}: unsupported element type '{word}'"
                       + (f" (ambiguous: {sorted(hits)})" if len(hits) > 1 else "")
                       + f"; supported: {sorted(table)}")


def build_fields(name: str, attrs: dict, spec: dict, values, exprs_out: dict, where: str):
    """JACC fields from a code's attributes: ``spec`` maps attr -> (field, scale).

    ``attrs`` maps attr -> (value, expression text or None); an expression that reads
    variables is kept (scaled as ``(expr) * scale``) in ``exprs_out``. Returns ``(fields,
    attributes JACC does not model)``.
    """
    fields: dict = {"name": name}
    unknown: dict = {}
    for attr, (value, expr) in attrs.items():
        target = spec.get(attr)
        if target is None:
            unknown[attr] = value
            continue
        field, scale = target
        if field is None:
            continue
        fields[field] = value * scale if not isinstance(value, list) else value
        if expr is not None:
            exprs_out[field] = expr if scale == 1.0 else f"({expr}) * {scale!r}"
    return fields, unknown


def assemble(name: str, definitions: dict, line: list[str], expressions: dict,
             variables: dict[str, float], source: str, code: str):
    """The `Lattice`: every variable an expression reads becomes a knob (its value)."""
    from .expressions import Expression
    from .lattice import Knob, Lattice

    used = {n for fields in expressions.values() for text in fields.values()
            for n in Expression.parse(text).names}
    knobs = {k: Knob(value=variables[k], description=f"{code} variable") for k in sorted(used)}
    placed = set(line)
    try:
        return Lattice(name=name, definitions={k: v for k, v in definitions.items() if k in placed},
                       line=line, knobs=knobs,
                       expressions={k: v for k, v in expressions.items() if k in placed})
    except (ValueError, TypeError) as err:
        raise LatticeError(f"{source}: {err}") from None


def short(err: Exception) -> str:
    """A validation error's own message (Pydantic wraps the element's ValueError)."""
    errors = getattr(err, "errors", None)
    if callable(errors):
        try:
            return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in errors())
        except Exception:  # not a pydantic error after all
            pass
    return str(err)


def check_written(el, spec: dict, handled: tuple[str, ...], code: str) -> None:
    """Raise when a field of ``el`` that the code cannot hold is set (never a silent drop)."""
    written = {field for field, _ in spec.values() if field} | set(handled)
    # every number, flaggable or static (a Multipole's angle)
    numbers = [f for f, info in type(el).model_fields.items()
               if info.annotation in (float, list[float]) or info.annotation == (float | None)]
    for field in numbers:
        value = getattr(el, field)
        if field in written or value in (0.0, None, []) or (field == "fintx" and value == el.fint):
            continue
        raise LatticeError(f"{el.element_name} '{el.name}': field '{field}' = {value!r} has no "
                           f"{code} counterpart, cannot export")


def written_elements(lat, definition) -> tuple[list[str], str]:
    """The definition statements of a lattice's elements and the body of its line, as the
    Bmad and elegant writers share them.

    ``definition(element, expressions) -> str`` writes one definition. A placement with
    overrides gets its own definition ``name_n``; the line's body lists the labels eight to
    a row with ``&`` continuations.
    """
    out, labels, written = [], [], set()
    for p in lat.elements:
        label = p.name if not p.overrides else f"{p.name}_{p.occurrence}"
        if label not in written:
            exprs = {} if p.overrides else lat.expressions.get(p.name, {})
            out.append(f"{label}: {definition(p.element, exprs)}")
            written.add(label)
        labels.append(label)
    body = ""
    for i, label in enumerate(labels):
        body += label + (", " if i < len(labels) - 1 else "")
        if i % 8 == 7 and i < len(labels) - 1:
            body += "&\n  "
    return out, body


def written_spec(el, words: dict, types: dict, code: str) -> dict:
    """The attribute table a writer uses for ``el`` (``types[words[kind]][1]``), or a
    LatticeError naming the element when ``code`` has no counterpart for its kind or cannot
    hold its aperture."""
    kind = el.element_name
    if kind not in words:
        raise LatticeError(f"{kind} '{el.name}': no {code} counterpart here, cannot export")
    if el.aperture is not None:
        raise LatticeError(f"{kind} '{el.name}': element apertures are not exported to {code}")
    return types[words[kind]][1]
