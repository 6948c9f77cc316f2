"""A strict parser of Fermilab's Data Request Format 2.0: ``DEVICE[.PROPERTY][RANGE][.FIELD][@EVENT]``.

Errors are ``ValueError`` naming the problem and the (1-based) character where it is.
"""

from __future__ import annotations

import re

from ._request import (DEFAULT_FIELD, FIELDS, PROPERTIES, QUALIFIERS, ArrayRange, ByteRange, ClockEvent,
                       DefaultEvent, ImmediateEvent, NeverEvent, PeriodicEvent, Request, StateEvent, TimeFreq)

__all__ = ["parse", "parse_device", "parse_event"]

_INDEX_MAX = 0xFFFF        # array indices are 16-bit
_INT_MAX = 2147483647      # byte offsets and lengths, times
_NAME_MAX = 64
_PROPERTY_BY_NAME = {alias: prop for prop, names in PROPERTIES.items() for alias in names}
_TIME_UNITS = {"S": 1_000_000, "M": 1000, "U": 1}
_FREQ_UNITS = {"H": 1, "K": 1000}
_STATE_OPS = ("=", "!=", "*", ">", "<", "<=", ">=")
_WORD = re.compile(r"[A-Za-z0-9_]+")


def _fail(text: str, pos: int, problem: str):
    raise ValueError(f"DRF2 request {text!r}: {problem} at character {pos + 1}")


def parse_device(text: str, start: int = 0, stop: int | None = None) -> tuple[str, str, int]:
    """The device at ``text[start:stop]``: ``(canonical name, property of its qualifier, end)``."""
    stop = len(text) if stop is None else stop
    if start >= stop:
        _fail(text, start, "missing device name")
    first = text[start]
    if not (first.isascii() and (first.isalpha() or first == "0")):
        _fail(text, start, f"a device starts with a letter (or 0 for a device index), not {first!r}")
    if start + 1 >= stop or text[start + 1] not in QUALIFIERS:
        got = repr(text[start + 1]) if start + 1 < stop else "the end"
        _fail(text, start + 1, f"expected a qualifier character (one of {''.join(QUALIFIERS)}) "
                               f"after the device's first letter, got {got}")
    m = _WORD.match(text, start + 2, stop)
    if m is None:
        _fail(text, start + 2, "missing device name after the qualifier")
    name = m.group()
    if first == "0" and not name.isdigit():
        _fail(text, start + 2, f"a device index (0:...) is a number, got {name!r}")
    if len(name) + 2 > _NAME_MAX:
        _fail(text, start, f"device name longer than {_NAME_MAX} characters")
    return f"{first.upper()}:{name.upper()}", QUALIFIERS[text[start + 1]], m.end()


def _number(text: str, pos: int, digits: str, what: str, limit: int) -> int:
    if not digits.isdigit():
        _fail(text, pos, f"{what} must be a non-negative integer, got {digits!r}")
    v = int(digits)
    if v > limit:
        _fail(text, pos, f"{what} {v} is larger than {limit}")
    return v


def _range(text: str, pos: int):
    """A range at ``text[pos]`` (``[`` or ``{``): ``(range, end)``."""
    close = "]" if text[pos] == "[" else "}"
    end = text.find(close, pos)
    if end < 0:
        _fail(text, pos, f"range opened with {text[pos]!r} is not closed with {close!r}")
    body = text[pos + 1:end]
    lo, colon, hi = body.partition(":")
    p_hi = pos + 2 + len(lo)
    if text[pos] == "[":
        if not colon:
            if not lo:
                return ArrayRange(0, None), end + 1
            i = _number(text, pos + 1, lo, "array index", _INDEX_MAX)
            return ArrayRange(i, i), end + 1
        i = _number(text, pos + 1, lo, "array start index", _INDEX_MAX) if lo else 0
        j = _number(text, p_hi, hi, "array end index", _INDEX_MAX) if hi else None
        if j is not None and j < i:
            _fail(text, p_hi, f"array end index {j} is before the start index {i}")
        return ArrayRange(i, j), end + 1
    if not lo:
        _fail(text, pos + 1, "a byte range needs an offset: {offset} or {offset:length}")
    off = _number(text, pos + 1, lo, "byte offset", _INT_MAX)
    if not colon:
        return ByteRange(off, None), end + 1
    n = _number(text, p_hi, hi, "byte length", _INT_MAX)
    if n == 0:
        _fail(text, p_hi, "byte length must be > 0")
    return ByteRange(off, n), end + 1


def _word_after_dot(text: str, pos: int) -> tuple[str, int]:
    m = _WORD.match(text, pos + 1)
    if m is None:
        _fail(text, pos + 1, "expected a property or field name after '.'")
    return m.group(), m.end()


def _field(text: str, pos: int, prop: str, word: str) -> str:
    allowed = FIELDS[prop]
    if not allowed:
        _fail(text, pos, f"property {prop} has no fields, got field {word.upper()!r}")
    if word.upper() not in allowed:
        _fail(text, pos, f"{word.upper()!r} is not a field of {prop} (fields: {', '.join(sorted(set(allowed)))})")
    return allowed[word.upper()]


def parse(text: str) -> Request:
    """Parse a DRF2 request ``DEVICE[.PROPERTY][RANGE][.FIELD][@EVENT]`` (see `Request`).

    Raises:
        ValueError: naming the problem and the character where it is.
    """
    if not isinstance(text, str):
        raise TypeError(f"DRF2 request must be a str, got {type(text).__name__}")
    device, prop, pos = parse_device(text)
    qual_pos, field = 1, None
    if pos < len(text) and text[pos] == ".":
        word, end = _word_after_dot(text, pos)
        explicit = _PROPERTY_BY_NAME.get(word.upper())
        if explicit is None:  # not a property: the field of the qualifier's property
            field = _field(text, pos + 1, prop, word)
        elif text[qual_pos] not in ":?" and explicit != prop:
            _fail(text, pos + 1, f"property {explicit} disagrees with the qualifier {text[qual_pos]!r} ({prop})")
        else:
            prop = explicit
        pos = end
    rng = None
    if pos < len(text) and text[pos] in "[{":
        if field is not None:
            _fail(text, pos, "a range comes before the field")
        rng, pos = _range(text, pos)
    if pos < len(text) and text[pos] == ".":
        if field is not None:
            _fail(text, pos, "a second field")
        word, end = _word_after_dot(text, pos)
        field = _field(text, pos + 1, prop, word)
        pos = end
    event = DefaultEvent()
    if pos < len(text) and text[pos] == "@":
        event = parse_event(text, pos + 1)
        pos = len(text)
    if pos < len(text):
        _fail(text, pos, f"unexpected {text[pos]!r} (expected '.', a range, '@' or the end)")
    return Request(device, prop, rng, field if field is not None else DEFAULT_FIELD[prop], event)


def _time(text: str, pos: int, token: str, what: str, allow_freq: bool = True) -> TimeFreq:
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", token)
    if m is None:
        _fail(text, pos, f"{what} must be a number with an optional unit (S, M, U, H, K), got {token!r}")
    value = _number(text, pos, m.group(1), what, _INT_MAX)
    unit = m.group(2).upper() or "M"
    if unit in _TIME_UNITS:
        return TimeFreq(micros=value * _TIME_UNITS[unit])
    if unit in _FREQ_UNITS and allow_freq:
        if value == 0:
            _fail(text, pos, f"{what}: a frequency must be > 0")
        return TimeFreq(hertz=value * _FREQ_UNITS[unit])
    units = "S, M, U, H, K" if allow_freq else "S, M, U"
    _fail(text, pos + len(m.group(1)), f"{what}: unknown unit {m.group(2)!r} (units: {units})")


def _split(text: str, start: int) -> list[tuple[str, int]]:
    """The comma-separated tokens of ``text[start:]`` with their positions."""
    out, pos = [], start
    for tok in text[start:].split(","):
        out.append((tok, pos))
        pos += len(tok) + 1
    return out


def parse_event(text: str, start: int = 0):
    """The event at ``text[start:]`` (after the ``@``)."""
    toks = _split(text, start)
    kind, kpos = toks[0][0].upper(), toks[0][1]
    if not kind:
        _fail(text, kpos, "missing event after '@'")
    if kind in ("I", "N", "U"):
        if len(toks) > 1:
            _fail(text, toks[1][1] - 1, f"event {kind} takes no arguments")
        return {"I": ImmediateEvent(), "N": NeverEvent(), "U": DefaultEvent()}[kind]
    if kind in ("P", "Q"):
        return _periodic(text, toks, kind == "P")
    if kind == "E":
        return _clock(text, toks)
    if kind == "S":
        return _state(text, toks)
    _fail(text, kpos, f"unknown event {toks[0][0]!r} (events: I, N, U, P, Q, E, S)")


def _periodic(text: str, toks, continuous: bool) -> PeriodicEvent:
    if len(toks) > 3:
        _fail(text, toks[3][1] - 1, "a periodic event takes at most a time and TRUE|FALSE")
    period = _time(text, toks[1][1], toks[1][0], "period") if len(toks) > 1 else TimeFreq(micros=1_000_000)
    if period.micros == 0:
        _fail(text, toks[1][1], "period must be > 0")
    immediate = True
    if len(toks) > 2:
        flag = toks[2][0].upper()
        if flag not in ("TRUE", "FALSE", "T", "F"):
            _fail(text, toks[2][1], f"expected TRUE or FALSE, got {toks[2][0]!r}")
        immediate = flag.startswith("T")
    return PeriodicEvent(period, immediate, continuous)


def _clock(text: str, toks) -> ClockEvent:
    if len(toks) < 2 or not toks[1][0]:
        _fail(text, toks[0][1] + 1, "a clock event needs its number: @E,hex[,H|S|E[,delay]]")
    if len(toks) > 4:
        _fail(text, toks[4][1] - 1, "a clock event takes at most a number, a type and a delay")
    num, npos = toks[1]
    if not re.fullmatch(r"[0-9A-Fa-f]+", num):
        _fail(text, npos, f"clock event number must be hexadecimal, got {num!r}")
    n = int(num, 16)
    if n > 0xFFFF:
        _fail(text, npos, f"clock event number 0x{n:X} is larger than 16 bits (0xFFFF)")
    ctype = "E"
    if len(toks) > 2:
        ctype = toks[2][0].upper()
        if ctype not in ("H", "S", "E"):
            _fail(text, toks[2][1], f"clock event type must be H, S or E, got {toks[2][0]!r}")
    delay = _time(text, toks[3][1], toks[3][0], "delay", allow_freq=False) if len(toks) > 3 else TimeFreq(micros=0)
    return ClockEvent(n, ctype, delay)


def _state(text: str, toks) -> StateEvent:
    if len(toks) != 5:
        _fail(text, toks[0][1], "a state event is @S,device,value,time,op")
    (dev, dpos), (val, vpos), (tim, tpos), (op, opos) = toks[1:]
    device, _, end = parse_device(text, dpos, dpos + len(dev))
    if end != dpos + len(dev):
        _fail(text, end, f"unexpected {text[end]!r} in the state device")
    m = re.fullmatch(r"-?\d+", val)
    if m is None:
        _fail(text, vpos, f"state value must be an integer, got {val!r}")
    if op not in _STATE_OPS:
        _fail(text, opos, f"state operator must be one of {' '.join(_STATE_OPS)}, got {op!r}")
    return StateEvent(device, int(val), _time(text, tpos, tim, "delay", allow_freq=False), op)
