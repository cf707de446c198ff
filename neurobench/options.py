"""Options of benchmark kinds: declared once per kind, documented once, set the same way everywhere.

A kind declares each option as a class attribute, ``n_bootstrap = option(1000, check=non_negative_int)``,
and documents it once in the numpydoc ``Parameters`` section of its class docstring. Subclasses
inherit the options of their kind and may declare more (a dataset's ``subjects``) or override a
default by declaring the same name again. The Python API (`load_benchmark(name, **options)`,
`score(..., options={...})`) and the CLI (``--option name=value``) both end in
`Benchmark.configure`, which refuses an unknown name by listing the options the kind accepts,
and checks each value before any work is done.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InvalidOptionError


class Option:
    """A declared option: a default, a parser for command-line text and a check of Python values.

    ``check(value) -> value`` may normalise (e.g. a list to a tuple) and raises ValueError or
    TypeError for a bad value; the message then names the option and the benchmark.
    """

    def __init__(self, default: Any, check: Callable[[Any], Any] | None = None,
                 parse: Callable[[str], Any] | None = None, nullable: bool = False):
        self.default = default
        self.check = check
        self.nullable = nullable or default is None
        self.parse = parse or _parser_for(default)
        if self.nullable and (default is not None or parse is not None):
            self.parse = _none_or(self.parse)
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj.__dict__.get(f"_option_{self.name}", self.default)

    def __set__(self, obj, value) -> None:
        obj.__dict__[f"_option_{self.name}"] = self.validate(value, getattr(obj, "identifier", "") or type(obj).__name__)

    def validate(self, value, owner: str = "") -> Any:
        if self.check is None or value is None and self.nullable:
            return value
        try:
            return self.check(value)
        except (TypeError, ValueError) as exc:
            where = f"{owner}: " if owner else ""
            raise InvalidOptionError(f"{where}option {self.name}={value!r}: {exc}") from None

    def from_text(self, text: str, owner: str = "") -> Any:
        """A value from command-line text (`--option name=text`), checked."""
        try:
            value = self.parse(text)
        except (TypeError, ValueError) as exc:
            where = f"{owner}: " if owner else ""
            raise InvalidOptionError(f"{where}option {self.name}={text!r}: {exc}") from None
        return self.validate(value, owner)


def option(default: Any, check: Callable[[Any], Any] | None = None,
           parse: Callable[[str], Any] | None = None, nullable: bool = False) -> Any:
    """Declare an option on a kind (see the module docstring); `nullable` also accepts None (the
    default when the default is None; `none` on the command line)."""
    return Option(default, check, parse, nullable)


# ------------------------------------------------------------------------------------- parsers

def _none_or(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def inner(text: str):
        return None if text.strip().lower() in ("none", "null", "") else parse(text)

    return inner


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def parse_floats(text: str) -> tuple[float, ...]:
    """'0.1,1,10' or 'logspace(-2,6,9)' -> floats."""
    text = text.strip()
    m = re.fullmatch(r"logspace\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*,\s*(\d+)\s*\)", text)
    if m:
        lo, hi, n = float(m.group(1)), float(m.group(2)), int(m.group(3))
        step = (hi - lo) / (n - 1) if n > 1 else 0.0
        return tuple(10 ** (lo + k * step) for k in range(n))
    return tuple(float(x) for x in text.split(",") if x.strip())


def parse_names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _parser_for(default: Any) -> Callable[[str], Any]:
    if isinstance(default, bool):
        return parse_bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, tuple) and default and all(isinstance(x, float) for x in default):
        return parse_floats
    if isinstance(default, tuple):
        return parse_names
    if default is None:
        return _none_or(str)
    return str


# ------------------------------------------------------------------------------------- checks

def non_negative_int(value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError("expected an integer >= 0")
    return int(value)


def int_at_least(low: int) -> Callable[[Any], int]:
    def check(value) -> int:
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(f"expected an integer >= {low}")
        return int(value)

    return check


def positive_floats(value) -> tuple[float, ...]:
    values = tuple(float(v) for v in (value if isinstance(value, Sequence) and not isinstance(value, str)
                                      else [value]))
    if not values or any(not v > 0 or v != v or v == float("inf") for v in values):
        raise ValueError("expected a non-empty list of positive, finite numbers")
    return values


def one_of(*choices: Any) -> Callable[[Any], Any]:
    def check(value):
        if value not in choices:
            raise ValueError(f"expected one of {list(choices)}")
        return value

    return check


def names(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = parse_names(value)
    out = tuple(str(v) for v in value)
    if not out:
        raise ValueError("expected at least one name")
    return out


def boolean(value) -> bool:
    """True or False (numpy booleans too); anything else is refused rather than read as truthy."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError("expected true or false")


def finite_float(value) -> float:
    v = float(value)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    return v


# ------------------------------------------------------------------------------------- docs

def declared_options(cls) -> dict[str, Option]:
    """Every option a class accepts (its own and inherited ones; the nearest declaration wins; a
    subclass withdraws an inherited option by setting its name to a plain value, e.g. `splits =
    None` for a dataset that defines its own test set)."""
    out: dict[str, Option] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Option):
                out[name] = value
            elif name in out:  # a subclass that sets the name to a plain value withdraws the option
                del out[name]
    return dict(sorted(out.items()))


def _parameters(doc: str) -> dict[str, str]:
    """name -> 'type: description' of one numpydoc Parameters section."""
    lines = inspect.cleandoc(doc).splitlines()
    try:
        first = next(i for i in range(len(lines) - 1)
                     if lines[i].strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"})
    except StopIteration:
        return {}
    out: dict[str, list[str]] = {}
    current = None
    for i in range(first + 2, len(lines)):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and set(lines[i + 1].strip()) == {"-"}:
            break  # the next section
        head = re.match(r"^(\w+)\s*:\s*(.*)$", line)
        if head:
            current = head.group(1)
            out[current] = [f"{head.group(2).strip()}:"] if head.group(2).strip() else []
        elif current and line.startswith((" ", "\t")) and line.strip():
            out[current].append(line.strip())
    return {k: " ".join(v) for k, v in out.items()}


def documented_options(cls) -> dict[str, str]:
    """name -> 'type: description' from the numpydoc Parameters sections along the class's MRO
    (the nearest class that documents a name wins)."""
    out: dict[str, str] = {}
    for klass in cls.__mro__:
        for name, text in _parameters(klass.__dict__.get("__doc__") or "").items():
            out.setdefault(name, text)
    return out


def configure(obj, values: Mapping[str, Any], *, from_text: bool = False) -> None:
    """Set options on a benchmark; unknown names are refused naming the accepted ones."""
    accepted = declared_options(type(obj))
    owner = getattr(obj, "identifier", "") or type(obj).__name__
    unknown = [k for k in values if k not in accepted]
    if unknown:
        import difflib

        hints = {k: difflib.get_close_matches(k, list(accepted), n=1) for k in unknown}
        hint = "".join(f" ({k}: did you mean {h[0]!r}?)" for k, h in hints.items() if h)
        listing = ", ".join(accepted) or "none"
        raise InvalidOptionError(
            f"{owner} ({type(obj).__name__}) does not take option(s) {unknown}{hint}; it accepts: {listing}. "
            f"`neurobench list benchmarks --options {owner}` describes them")
    checked = {k: (accepted[k].from_text(v, owner) if from_text and isinstance(v, str) else accepted[k].validate(v, owner))
               for k, v in values.items()}
    for k, v in checked.items():
        obj.__dict__[f"_option_{k}"] = v


def option_values(obj) -> dict[str, Any]:
    """The options in effect (set or default), for provenance and configuration fingerprints."""
    return {name: getattr(obj, name) for name in declared_options(type(obj))}


__all__ = ["Option", "option", "configure", "declared_options", "documented_options", "option_values",
           "non_negative_int", "int_at_least", "positive_floats", "one_of", "names", "finite_float", "boolean",
           "parse_bool", "parse_floats", "parse_names"]
