# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render Python values to Postfix syntax, and parse/render main.cf and master.cf.

Everything here is pure: no files, no commands.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Lines of a list parameter are wrapped when the one-line form is longer than this.
WRAP_WIDTH = 80
CONTINUATION_INDENT = "    "

MASTER_TYPES = ("inet", "unix", "unix-dgram", "fifo", "pass")
MASTER_FLAG_FIELDS = ("private", "unpriv", "chroot")
MASTER_FIELDS = ("name", "type", "private", "unpriv", "chroot", "wakeup", "maxproc", "command", "args")
MASTER_HEADER = (
    "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
    "#               (yes)   (yes)   (no)    (never) (100)\n"
)

_PARAM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_WAKEUP_RE = re.compile(r"^(-|\d+\??)\Z")
_MAXPROC_RE = re.compile(r"^(-|\d+)\Z")
_SEPARATORS = ", \t\r\n"
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
#: The options of Postfix's server skeletons (getopt "cdDi:lm:n:o:s:St:uvVz"): flags, and options with a value.
SERVER_FLAGS = frozenset("cdDlSuvVz")
SERVER_OPTIONS_WITH_VALUE = frozenset("imnost")


#: A ``type:name`` lookup table reference (the name may itself be a reference, as in ``proxy:hash:/x``).
TABLE_TOKEN_RE = re.compile(r"^([a-z][a-z0-9_]*):(.+)\Z", re.DOTALL)
#: ``$name``, ``${name}`` and ``$(name)`` parameter expansions.
EXPANSION_RE = re.compile(r"\$(?:\{([A-Za-z0-9_.-]+)\}|\(([A-Za-z0-9_.-]+)\)|([A-Za-z0-9_]+))")


class PostfixSyntaxError(ValueError):
    """A value cannot be represented in, or parsed from, Postfix configuration syntax."""


class PostfixValidationError(ValueError):
    """A configuration value would break Postfix; the message names the parameter.

    Raised by the checks in postfix_restrictions, postfix_networks, postfix_tables and
    postfix_validate.
    """


def is_valid_param_name(name: str) -> bool:
    """Return whether *name* is usable as a main.cf parameter name."""
    return isinstance(name, str) and bool(_PARAM_NAME_RE.match(name))


def render_scalar(value: Any) -> str:
    """Render one scalar: bool -> yes/no, int -> decimal, str -> stripped, None -> ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise PostfixSyntaxError(f"value {value!r} contains a line break")
        return value.strip()
    raise PostfixSyntaxError(f"cannot render a value of type {type(value).__name__} ({value!r})")


def render_value(value: Any) -> str:
    """Render a Python value as a Postfix parameter value.

    Lists and tuples are joined with ``", "``; empty items are dropped.
    """
    if isinstance(value, (list, tuple)):
        items = [render_scalar(item) for item in value]
        return ", ".join(item for item in items if item)
    return render_scalar(value)


def table_ref(table_type: str, path: str) -> str:
    """Return a ``type:name`` lookup table reference, e.g. ``hash:/etc/postfix/access``."""
    if not isinstance(table_type, str) or not re.match(r"^[a-z][a-z0-9_]*\Z", table_type):
        raise PostfixSyntaxError(f"invalid lookup table type {table_type!r}")
    if not isinstance(path, str) or not path.strip():
        raise PostfixSyntaxError("lookup table name must be a non-empty string")
    if any(ch in path for ch in "\r\n"):
        raise PostfixSyntaxError(f"lookup table name {path!r} contains a line break")
    return f"{table_type}:{path.strip()}"


def render_table(entries: Any) -> str:
    """Render lookup table source text (``key value`` lines) from a mapping or from ``[key, value]`` pairs.

    List values are joined with ``", "`` (an alias with several targets). Keys must be non-empty and
    without whitespace (postmap splits each line at the first whitespace); values must not be empty.
    """
    if isinstance(entries, Mapping):
        pairs: Iterable[Any] = entries.items()
    elif isinstance(entries, (list, tuple)):
        pairs = entries
    else:
        raise PostfixSyntaxError(
            f"a lookup table must be a mapping or a list of [key, value] pairs, got {type(entries).__name__}"
        )
    lines = []
    for index, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise PostfixSyntaxError(f"table entry {index}: expected a [key, value] pair, got {pair!r}")
        key, value = pair
        if not isinstance(key, str) or not key or any(ch.isspace() for ch in key) or key.startswith("#"):
            raise PostfixSyntaxError(
                f"table entry {index}: key {key!r} is empty, contains whitespace or starts with '#'"
            )
        rendered = render_value(value)
        if not rendered:
            raise PostfixSyntaxError(f"table entry {index} ({key}): the value is empty")
        lines.append(f"{key} {rendered}\n")
    return "".join(lines)


#: Flags after a pattern's closing delimiter (regexp_table(5) and pcre_table(5)).
PATTERN_FLAGS = {"regexp": "imx", "pcre": "imsxAEUX"}
_PATTERN_KEY_RE = re.compile(r"^!?/(?P<body>(?:[^/\\]|\\.)+)/(?P<flags>[A-Za-z]*)\Z", re.DOTALL)
_ALIAS_NAME_RE = re.compile(r"^[^\s:#,\"][^\s:,\"]*\Z")


#: Python's re errors that PCRE and POSIX extended expressions report too (a first filter on the
#: controller; postfix_config runs Postfix's own lookup on every pattern table before it is used).
_AGREED_ERRORS = (
    "missing ), unterminated subpattern",
    "unterminated character set",
    "min repeat greater than max repeat",
)
_PLAIN_RANGE_RE = re.compile(r"^bad character range [^\\]-[^\\]\Z")
_GROUP_REF_RE = re.compile(r"^invalid group reference [1-9]\Z")
_PYTHON_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def _check_pattern_compiles(pattern: str, flags: str, table_type: str) -> None:
    """Refuse a pattern that cannot compile, where Python's re and the table's dialect agree.

    A regexp table is POSIX extended syntax (basic with the ``x`` flag, not checked here), in which a
    backslash inside brackets is an ordinary character and an unmatched ``)`` is literal; pcre is
    close to Python's re. Errors that only Python reports (an escape it does not know, PCRE's verbs)
    are left to Postfix's own check on the host.
    """
    if table_type == "regexp" and ("x" in flags or ("[" in pattern and "\\" in pattern)):
        return
    python_flags = 0
    for flag in flags:
        if table_type == "pcre" or flag != "x":
            python_flags |= _PYTHON_FLAGS.get(flag, 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern, python_flags)
    except re.error as exc:
        message = exc.msg
        if message in _AGREED_ERRORS or _PLAIN_RANGE_RE.match(message) or _GROUP_REF_RE.match(message):
            where = f" at position {exc.pos}" if exc.pos is not None else ""
            raise PostfixSyntaxError(
                f"pattern {pattern!r} is not a valid {table_type} expression: {message}{where}"
            ) from None


def pattern_key(pattern: str, flags: str = "", table_type: str = "regexp") -> str:
    """Return ``/pattern/flags`` for a regexp or pcre table, escaping ``/`` in *pattern*."""
    allowed = PATTERN_FLAGS.get(table_type)
    if allowed is None:
        raise PostfixSyntaxError(f"pattern tables are regexp or pcre, not {table_type!r}")
    if not isinstance(pattern, str) or not pattern:
        raise PostfixSyntaxError("the pattern must be a non-empty string")
    if "\n" in pattern or "\r" in pattern:
        raise PostfixSyntaxError(f"pattern {pattern!r} contains a line break")
    if not isinstance(flags, str) or any(flag not in allowed for flag in flags):
        raise PostfixSyntaxError(
            f"flags {flags!r} of pattern {pattern!r}: {table_type} knows only {', '.join(allowed)}"
        )
    _check_pattern_compiles(pattern, flags, table_type)
    escaped = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            following = next(chars, None)
            if following is None:
                raise PostfixSyntaxError(f"pattern {pattern!r} ends with a lone backslash")
            escaped.append(char + following)
        else:
            escaped.append("\\/" if char == "/" else char)
    return "/" + "".join(escaped) + "/" + flags


def render_pattern_table(entries: Any, table_type: str = "regexp") -> str:
    """Render a regexp or pcre table from ``[key, value]`` pairs whose keys are ``/pattern/flags``.

    Unlike render_table, a key may contain whitespace inside its delimiters; a key that is not a
    ``/pattern/flags`` (optionally negated with ``!``) with flags of *table_type* is refused.
    """
    if not isinstance(entries, (list, tuple)):
        raise PostfixSyntaxError(f"a pattern table must be a list of [key, value] pairs, got {type(entries).__name__}")
    lines = []
    for index, pair in enumerate(entries):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise PostfixSyntaxError(f"table entry {index}: expected a [key, value] pair, got {pair!r}")
        key, value = pair
        match = _PATTERN_KEY_RE.match(key) if isinstance(key, str) else None
        if not match:
            raise PostfixSyntaxError(f"table entry {index}: key {key!r} is not a /pattern/flags")
        try:
            pattern_key(match.group("body"), match.group("flags"), table_type)
        except PostfixSyntaxError as exc:
            raise PostfixSyntaxError(f"table entry {index}: {exc}") from None
        rendered = render_value(value)
        if not rendered:
            raise PostfixSyntaxError(f"table entry {index} ({key}): the value is empty")
        lines.append(f"{key} {rendered}\n")
    return "".join(lines)


def render_aliases(aliases: Any) -> str:
    """Render aliases(5) text, ``name: target, target`` lines sorted by name, from a mapping.

    A target is a string or a list of strings. Names must not be empty nor contain whitespace,
    ``:``, ``,`` or quotes; targets must not be empty.
    """
    if not isinstance(aliases, Mapping):
        raise PostfixSyntaxError(f"aliases must be a mapping of name to targets, got {type(aliases).__name__}")
    lines = []
    for name in sorted(aliases, key=str):
        if not isinstance(name, str) or not _ALIAS_NAME_RE.match(name):
            raise PostfixSyntaxError(f"alias name {name!r} is empty or contains whitespace, ':', ',' or a quote")
        targets = aliases[name]
        items = targets if isinstance(targets, (list, tuple)) else [targets]
        if not items or any(not isinstance(item, str) or not item.strip() for item in items):
            raise PostfixSyntaxError(f"alias {name}: targets must be non-empty strings, got {targets!r}")
        rendered_items = []
        for item in items:
            target = item.strip()
            if _CONTROL_RE.search(target) or '"' in target or "," in target:
                raise PostfixSyntaxError(
                    f"alias {name}: target {item!r} contains a line break, a control character, a comma or a quote"
                )
            # A command or file with spaces is one target only in double quotes (aliases(5)).
            rendered_items.append(f'"{target}"' if any(ch.isspace() for ch in target) else target)
        lines.append(f"{name}: {', '.join(rendered_items)}\n")
    return "".join(lines)


def split_list(value: Any) -> list[str]:
    """Split a Postfix list value on commas and whitespace, keeping ``{ ... }`` groups together.

    A Python list is split item by item, so ``["a, b", "c"]`` gives ``["a", "b", "c"]``.
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        tokens: list[str] = []
        for item in value:
            tokens.extend(split_list(render_scalar(item)))
        return tokens
    text = render_scalar(value)
    tokens = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
        if depth == 0 and ch in _SEPARATORS:
            if current:
                tokens.append("".join(current))
                current = []
            continue
        current.append(ch)
    if current:
        tokens.append("".join(current))
    return tokens


def expand_value(value: str, main: Mapping[str, Any], depth: int = 10) -> str:
    """Expand ``$name``, ``${name}`` and ``$(name)`` from *main*; unknown names stay as they are."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in main:
            try:
                return render_value(main[name])
            except PostfixSyntaxError:
                pass
        return match.group(0)

    for _attempt in range(depth):
        expanded = EXPANSION_RE.sub(replace, value)
        if expanded == value:
            break
        value = expanded
    return value


def normalize_value(value: Any) -> str:
    """Return a canonical string for comparing two values of the same parameter.

    Whitespace runs collapse to one space, and commas are written as ``", "``.
    """
    text = render_value(value)
    text = re.sub(r"\s*,\s*", ", ", text)
    text = re.sub(r"\s+", " ", text)
    return text.strip().rstrip(",").strip()


def render_param(name: str, value: Any) -> str:
    """Render one ``name = value`` entry (without trailing newline).

    A list with more than one item whose one-line form is longer than WRAP_WIDTH is written
    with one item per continuation line.
    """
    if not is_valid_param_name(name):
        raise PostfixSyntaxError(f"invalid parameter name {name!r}")
    rendered = render_value(value)
    line = f"{name} = {rendered}".rstrip()
    if isinstance(value, (list, tuple)) and len(line) > WRAP_WIDTH:
        items = [item for item in (render_scalar(v) for v in value) if item]
        if len(items) > 1:
            body = ",\n".join(CONTINUATION_INDENT + item for item in items)
            return f"{name} =\n{body}"
    return line


def _header_lines(header: str | Sequence[str] | None) -> list[str]:
    if header is None:
        return []
    lines = header.splitlines() if isinstance(header, str) else list(header)
    return [line if line.startswith("#") else f"# {line}".rstrip() for line in lines]


def render_main_cf(params: Mapping[str, Any], header: str | Sequence[str] | None = None) -> str:
    """Render an ordered mapping as main.cf text, with *header* as leading comment lines."""
    lines = _header_lines(header)
    if lines:
        lines.append("")
    lines.extend(render_param(name, value) for name, value in params.items())
    return "\n".join(lines) + "\n"


def _is_brace_group(text: str) -> bool:
    """Whether *text* is one ``{ ... }`` group whose first brace closes at its end."""
    if not (text.startswith("{") and text.endswith("}")):
        return False
    depth = 0
    for position, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0 and position != len(text) - 1:
                return False
            if depth < 0:
                return False
    return depth == 0


def _parse_override(key: str, value: str) -> tuple[str, str]:
    """Split one ``-o`` value, ``name=value`` or ``{ name = value }``; the name must be a parameter name."""
    text = value[1:-1].strip() if _is_brace_group(value) else value
    name, sep, setting = text.partition("=")
    name = name.strip()
    if not sep or not is_valid_param_name(name):
        raise PostfixSyntaxError(f"master.cf service {key}: -o {value!r} is not 'name=value' with a parameter name")
    return name, setting.strip()


class MasterService:
    """One master.cf service entry."""

    __slots__ = MASTER_FIELDS

    def __init__(
        self,
        *,
        name: str,
        type: str,
        command: str,
        private: str = "-",
        unpriv: str = "-",
        chroot: str = "-",
        wakeup: str = "-",
        maxproc: str = "-",
        args: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.type = type
        self.private = private
        self.unpriv = unpriv
        self.chroot = chroot
        self.wakeup = wakeup
        self.maxproc = maxproc
        self.command = command
        self.args = list(args)
        self.validate()

    @property
    def key(self) -> str:
        """The ``name/type`` pair that identifies the service."""
        return f"{self.name}/{self.type}"

    def validate(self) -> None:
        """Raise PostfixSyntaxError when a field cannot appear in master.cf."""
        for field in ("name", "type", "private", "unpriv", "chroot", "wakeup", "maxproc", "command"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
                raise PostfixSyntaxError(f"master.cf field '{field}' must be a non-empty word, got {value!r}")
        if self.type not in MASTER_TYPES:
            raise PostfixSyntaxError(
                f"master.cf service {self.name}: type must be one of {', '.join(MASTER_TYPES)}, got {self.type!r}"
            )
        for field in MASTER_FLAG_FIELDS:
            if getattr(self, field) not in ("y", "n", "-"):
                raise PostfixSyntaxError(
                    f"master.cf service {self.key}: '{field}' must be y, n or -, got {getattr(self, field)!r}"
                )
        if not _WAKEUP_RE.match(self.wakeup):
            raise PostfixSyntaxError(f"master.cf service {self.key}: invalid wakeup {self.wakeup!r}")
        if not _MAXPROC_RE.match(self.maxproc):
            raise PostfixSyntaxError(f"master.cf service {self.key}: invalid maxproc {self.maxproc!r}")
        if "#" in self.name:
            raise PostfixSyntaxError(
                f"master.cf service {self.name!r}: a service name must not contain '#' (master.cf would read the "
                "line as a comment, and its arguments as the previous service's)"
            )
        for field in MASTER_FIELDS[:-1]:
            if _CONTROL_RE.search(getattr(self, field)):
                raise PostfixSyntaxError(f"master.cf service {self.key!r}: '{field}' contains a control character")
        for arg in self.args:
            if not isinstance(arg, str) or not arg.strip() or _CONTROL_RE.search(arg):
                raise PostfixSyntaxError(
                    f"master.cf service {self.key}: invalid argument {arg!r} (empty, or with a control character)"
                )
            if any(ch.isspace() for ch in arg) and not _is_brace_group(arg):
                raise PostfixSyntaxError(
                    f"master.cf service {self.key}: argument {arg!r} contains whitespace; master.cf would split it "
                    "into several arguments (write a value with spaces as one '{ name = value }' group)"
                )
            if arg.startswith("#"):
                raise PostfixSyntaxError(
                    f"master.cf service {self.key}: argument {arg!r} starts with '#' (master.cf would drop it "
                    "as a comment)"
                )
        self.options()

    def options(self) -> dict[str, str]:
        """The ``-o name=value`` (or ``-o { name = value }``) overrides, parsed as the daemon's getopt does.

        Options end at the first argument that does not start with ``-`` (Postfix calls getopt
        with ``+``), so a pipe's ``argv=... -o x`` keeps its own options.
        """
        overrides: dict[str, str] = {}
        index = 0
        while index < len(self.args):
            arg = self.args[index]
            if arg == "--":
                break
            if not arg.startswith("-") or arg == "-":
                break
            position = 1
            while position < len(arg):
                letter = arg[position]
                if letter in SERVER_FLAGS:
                    position += 1
                    continue
                if letter not in SERVER_OPTIONS_WITH_VALUE:
                    raise PostfixSyntaxError(
                        f"master.cf service {self.key}: unknown option -{letter} in argument {arg!r}"
                    )
                value = arg[position + 1 :]
                if not value:
                    index += 1
                    if index >= len(self.args):
                        raise PostfixSyntaxError(f"master.cf service {self.key}: option -{letter} needs a value")
                    value = self.args[index]
                if letter == "o":
                    name, setting = _parse_override(self.key, value)
                    overrides[name] = setting
                break
            index += 1
        return overrides

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MasterService:
        """Build a service from a mapping with the keys of MASTER_FIELDS."""
        if not isinstance(data, Mapping):
            raise PostfixSyntaxError(f"a master.cf service must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(MASTER_FIELDS))
        if unknown:
            raise PostfixSyntaxError(f"unknown master.cf service keys: {', '.join(unknown)}")
        missing = [key for key in ("name", "type", "command") if key not in data]
        if missing:
            raise PostfixSyntaxError(f"master.cf service is missing: {', '.join(missing)}")
        args = data.get("args", [])
        if not isinstance(args, list):
            raise PostfixSyntaxError(f"master.cf service {data['name']}: 'args' must be a list of strings")
        kwargs = {key: data[key] for key in MASTER_FIELDS if key in data and key != "args"}
        return cls(args=args, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Return the service as a plain dict."""
        return {field: (list(self.args) if field == "args" else getattr(self, field)) for field in MASTER_FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MasterService) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"MasterService({self.to_dict()!r})"

    __hash__ = None  # type: ignore[assignment]


def group_master_args(args: Sequence[str]) -> list[str]:
    """Group arguments into continuation lines: ``-o`` is kept with its value."""
    lines: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-o" and index + 1 < len(args):
            lines.append(f"-o {args[index + 1]}")
            index += 2
            continue
        lines.append(arg)
        index += 1
    return lines


def render_master_service(service: MasterService) -> str:
    """Render one service entry: aligned columns, then args on lines indented by two spaces."""
    head = (
        f"{service.name:<10} {service.type:<5} {service.private:<7} {service.unpriv:<7} "
        f"{service.chroot:<7} {service.wakeup:<7} {service.maxproc:<7} {service.command}"
    )
    lines = [head]
    lines.extend(f"  {line}" for line in group_master_args(service.args))
    return "\n".join(lines)


def render_master_cf(services: Iterable[MasterService], header: str | Sequence[str] | None = None) -> str:
    """Render master.cf text."""
    lines = _header_lines(header)
    if lines:
        lines.append("")
    text = "\n".join(lines) + ("\n" if lines else "")
    text += MASTER_HEADER
    text += "".join(render_master_service(service) + "\n" for service in services)
    return text


def split_master_words(line: str) -> list[str]:
    """Split a master.cf line at whitespace, keeping ``{ ... }`` groups (Postfix 3.0) as one word."""
    words: list[str] = []
    current: list[str] = []
    depth = 0
    for char in line:
        if char == "{" and not current and depth == 0:
            depth = 1
            current.append(char)
            continue
        if depth:
            current.append(char)
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0:
                words.append("".join(current))
                current = []
            continue
        if char.isspace():
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        words.append("".join(current))
    return words


def parse_master_cf(text: str) -> list[MasterService]:
    """Parse master.cf text into services (continuation lines become args)."""
    services: list[MasterService] = []
    entries: list[tuple[int, list[str]]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if raw[0] in " \t":
            if not entries:
                raise PostfixSyntaxError(f"master.cf line {lineno}: continuation line without a service")
            entries[-1][1].extend(split_master_words(stripped))
        else:
            entries.append((lineno, split_master_words(stripped)))
    for lineno, words in entries:
        if len(words) < 8:
            raise PostfixSyntaxError(f"master.cf line {lineno}: expected at least 8 fields, got {len(words)}")
        name, type_, private, unpriv, chroot, wakeup, maxproc, command = words[:8]
        services.append(
            MasterService(
                name=name,
                type=type_,
                private=private,
                unpriv=unpriv,
                chroot=chroot,
                wakeup=wakeup,
                maxproc=maxproc,
                command=command,
                args=words[8:],
            )
        )
    return services
