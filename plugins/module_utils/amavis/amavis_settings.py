# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""amavisd-new with ClamAV and SpamAssassin: the settings, their validation and the shared constants.

``check_settings`` validates the role's variables (keys are this collection's names without
the ``amavis_`` prefix, which the errors put back); ``settings_warnings`` names the legitimate
choices that let viruses through. The files are rendered by :mod:`amavis_render` and applied by
:mod:`amavis_config`.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_validate import is_fqdn
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragment_names import fragment_name

ENV = {"LC_ALL": "C"}
HEADER = "# Managed by Ansible (postmaster.mailserver.amavis_config); do not edit.\n"
MARK = "# Set by postmaster.mailserver.amavis_config (the lines below); do not edit them."

#: amavis listens here (Debian's $inet_socket_port) and sends checked mail back to Postfix there.
LISTEN_HOST = "127.0.0.1"
LISTEN_PORT = 10024
REINJECT_PORT = 10025
FRAGMENT = fragment_name("amavis")
#: The main.cf parameters that route mail through a content filter: the amavis fragment owns them.
OWNED_PARAMS = ("content_filter", "smtpd_proxy_filter")
POSTFIX_SERVICE = "smtp-amavis"

DEFAULT_CONF = "/etc/amavis/conf.d/60-postmaster"
DEBIAN_CONF_DIR = "/usr/share/amavis/conf.d"
DEFAULT_CLAMD_CONF = "/etc/clamav/clamd.conf"
DEFAULT_FRESHCLAM_CONF = "/etc/clamav/freshclam.conf"
DEFAULT_DATABASE_DIR = "/var/lib/clamav"
DEFAULT_CLAMD_SOCKET = "/var/run/clamav/clamd.ctl"
DEFAULT_SYSTEMD_DIR = "/etc/systemd/system"
DROPIN_NAME = "postmaster-database.conf"
MANIFEST = ".postmaster-signatures"

AMAVIS_UNIT = "amavis.service"
CLAMD_SOCKET_UNIT = "clamav-daemon.socket"
CLAMD_UNIT = "clamav-daemon.service"
CLAMD_UNITS = (CLAMD_SOCKET_UNIT, CLAMD_UNIT)
FRESHCLAM_UNIT = "clamav-freshclam.service"
FRESHCLAM_UNITS = (FRESHCLAM_UNIT, "clamav-freshclam-once.timer", "clamav-freshclam-once.service")
ALL_UNITS = (AMAVIS_UNIT, *CLAMD_UNITS, *FRESHCLAM_UNITS)

DESTINIES = ("D_DISCARD", "D_BOUNCE", "D_REJECT", "D_PASS")
DESTINY_KEYS = ("final_virus_destiny", "final_banned_destiny", "final_spam_destiny", "final_bad_header_destiny")
LEVEL_KEYS = ("sa_tag_level_deflt", "sa_tag2_level_deflt", "sa_kill_level_deflt")
SIGNATURE_MODES = ("freshclam", "mirror", "files")
FILTER_MODES = ("after_queue", "before_queue")
#: ClamAV's text signature formats (binary .cvd/.cld databases come from a mirror).
SIGNATURE_EXTENSIONS = (
    "hdb", "hsb", "hdu", "hsu", "mdb", "msb", "mdu", "msu", "ndb", "ndu", "ldb", "ldu", "idb",
    "cdb", "crb", "fp", "sfp", "ign", "ign2", "pdb", "gdb", "wdb", "ftm", "yar", "yara",
)  # fmt: skip

#: amavis logs its errors with these marks (at notice priority); clamd prints ERROR: to stderr.
BAD_PREFIXES = ("(!!)", "ERROR:", "TROUBLE")

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "clamav_enabled": True,
    "spamassassin_enabled": True,
    "final_virus_destiny": "D_DISCARD",
    "final_banned_destiny": "D_BOUNCE",
    "final_spam_destiny": "D_BOUNCE",
    "final_bad_header_destiny": "D_PASS",
    "sa_tag_level_deflt": 2.0,
    "sa_tag2_level_deflt": 6.31,
    "sa_kill_level_deflt": 6.31,
    "sa_local_tests_only": False,
    "quarantine_dir": "/var/lib/amavis/virusmails",
    "max_servers": "auto",
    "myhostname": None,
    "local_domains": [],
    "postfix_filter": "after_queue",
    "signatures": "freshclam",
    "freshclam_mirror": "",
    "clamav_signature_files": [],
    "clamav_concurrent_database_reload": True,
    "clamav_database_timeout": 300,
    "clamav_min_memory_mb": 2048,
    "clamav_memory_check": True,
}

# \Z, not $: "$" also matches before a trailing newline, which would reach the Perl file.
_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+-]*\Z")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_URL_RE = re.compile(
    r"^(?P<scheme>https?)://(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(:(?P<port>[0-9]{1,5}))?(?P<path>/[A-Za-z0-9._~/-]*)?\Z"
)
#: Directories a quarantine must not be, and trees it must not be in.
SYSTEM_DIRS = frozenset(
    ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
     "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/cache",
     "/var/log", "/var/mail", "/var/spool", "/var/tmp", "/var/lib/amavis", "/var/lib/amavis/tmp",
     "/var/lib/amavis/db", "/var/lib/clamav", "/var/spool/postfix")
)  # fmt: skip
SYSTEM_TREES = ("/bin/", "/boot/", "/dev/", "/etc/", "/lib/", "/lib64/", "/proc/", "/run/", "/sbin/", "/sys/", "/usr/")


class AmavisError(ConfigModuleError):
    """Validation, a check, the apply or the health check failed."""


# -- settings --------------------------------------------------------------------


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
        return value.strip().lower() in ("true", "yes")
    raise AmavisError(f"{where}: must be true or false, got {value!r}")


def _int(value: Any, where: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise AmavisError(f"{where}: must be a whole number, got {value!r}")
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[0-9]+\s*", value):
            raise AmavisError(f"{where}: must be a whole number, got {value!r}")
        value = int(value)
    if not minimum <= value <= maximum:
        raise AmavisError(f"{where}: must be between {minimum} and {maximum}, got {value}")
    return value


# auto max_servers: two amavis processes per processor (each spends much of a message waiting on clamd),
# as many as the memory holds next to clamd and the system, between 2 and 16.
AUTO_MAX_SERVERS = (2, 16)
SERVER_MB = {True: 170, False: 60}  # one amavis process with SpamAssassin, without
RESERVED_MB = 512  # the system, Postfix and Dovecot
CLAMD_MB = 1100  # clamd with the official database


def auto_max_servers(processors: Any, memtotal_mb: Any, *, clamav: bool, spamassassin: bool) -> int:
    """The number of amavis processes for a host of *processors* and *memtotal_mb* (either may be None)."""
    low, high = AUTO_MAX_SERVERS
    wanted = (
        2 * processors if isinstance(processors, int) and not isinstance(processors, bool) and processors > 0 else low
    )
    if isinstance(memtotal_mb, int) and not isinstance(memtotal_mb, bool):
        free = memtotal_mb - RESERVED_MB - (CLAMD_MB if clamav else 0)
        wanted = min(wanted, free // SERVER_MB[spamassassin])
    return max(low, min(wanted, high))


def _max_servers(value: Any, where: str, processors: Any, memtotal_mb: Any, result: Mapping[str, Any]) -> int:
    if isinstance(value, str) and value.strip() == "auto":
        clamav = bool(result["enabled"] and result["clamav_enabled"])
        return auto_max_servers(processors, memtotal_mb, clamav=clamav, spamassassin=result["spamassassin_enabled"])
    if isinstance(value, str) and not re.fullmatch(r"\s*[0-9]+\s*", value):
        raise AmavisError(f"{where}: must be a whole number of processes or auto, got {value!r}")
    return _int(value, where, 1, 256)


def _level(value: Any, where: str) -> int | float:
    """A SpamAssassin score: a finite number (ints stay ints, so 6 is written as 6)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AmavisError(f"{where}: must be a number such as 6.31, got {value!r}")
    if isinstance(value, str):
        if not re.fullmatch(r"\s*-?[0-9]+(\.[0-9]+)?\s*", value):
            raise AmavisError(f"{where}: must be a number such as 6.31, got {value!r}")
        value = float(value) if "." in value else int(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise AmavisError(f"{where}: must be a finite number, got {value!r}")
    if not -999 <= value <= 999:
        raise AmavisError(f"{where}: must be between -999 and 999, got {value!r}")
    return value


def _choice(value: Any, choices: Sequence[str], where: str, upper: bool = False) -> str:
    text = value.strip() if isinstance(value, str) else value
    if upper and isinstance(text, str):
        text = text.upper()
    if text not in choices:
        raise AmavisError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    return text


def _hostname(value: Any, where: str) -> str:
    text = value.strip().lower().rstrip(".") if isinstance(value, str) else value
    if not is_fqdn(text):
        raise AmavisError(
            f"{where}: {value!r} is not a fully qualified host name (at least one dot, letters, digits and '-'); "
            "amavis stops a few seconds after it starts without one"
        )
    return text


def _domains(value: Any, where: str) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise AmavisError(f"{where}: must be a list of domain names, got {type(value).__name__}")
    result = []
    for index, item in enumerate(value):
        text = item.strip().lower().lstrip(".") if isinstance(item, str) else item
        if not is_fqdn(text):
            raise AmavisError(f"{where}[{index}]: {item!r} is not a domain name")
        result.append(text)
    return result


def check_path(value: Any, where: str) -> str:
    """An absolute, normalized path of plain characters that is not a system directory."""
    if not isinstance(value, str) or not value:
        raise AmavisError(f"{where}: must be an absolute path, got {value!r}")
    if not _PATH_RE.match(value):
        raise AmavisError(
            f"{where}: {value!r} must be an absolute path of letters, digits and . _ / + - "
            "(no spaces, quotes, newlines or other characters that would reach the Perl configuration)"
        )
    if ".." in value.split("/") or "." in value.split("/"):
        raise AmavisError(f"{where}: {value!r} must not contain '.' or '..' components")
    normalized = posixpath.normpath(value)
    if normalized in SYSTEM_DIRS or normalized.startswith(SYSTEM_TREES):
        raise AmavisError(f"{where}: {value!r} is a system directory or lies in one; give a directory of its own")
    return normalized


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AmavisError(f"{where}: give the URL of the private mirror, such as https://clamav-mirror.example.com")
    match = _URL_RE.match(value.strip())
    if not match or (match.group("port") and not 0 < int(match.group("port")) < 65536):
        raise AmavisError(f"{where}: {value!r} is not an http(s) URL of plain characters (https://host[:port][/path])")
    return value.strip()


def _signature_files(value: Any, where: str, sources: Mapping[str, str] | None) -> list[dict[str, str]]:
    if not isinstance(value, (list, tuple)):
        raise AmavisError(f"{where}: must be a list of {{name, content}} or {{name, src}} entries")
    result = []
    names = set()
    for index, entry in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(entry, Mapping):
            raise AmavisError(f"{here}: must be a mapping with name and content (or src), got {entry!r}")
        unknown = sorted(set(entry) - {"name", "content", "src"})
        if unknown:
            raise AmavisError(f"{here}: unknown key(s) {', '.join(unknown)}; use name and content or src")
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name) or name.rsplit(".", 1)[-1] not in SIGNATURE_EXTENSIONS:
            raise AmavisError(
                f"{here}.name: {name!r} must be a plain file name ending in a ClamAV text signature extension "
                f"({', '.join('.' + ext for ext in SIGNATURE_EXTENSIONS)})"
            )
        if name in names:
            raise AmavisError(f"{here}.name: {name!r} is listed twice")
        names.add(name)
        if ("content" in entry) == ("src" in entry):
            raise AmavisError(f"{here}: give exactly one of content and src")
        if "src" in entry:
            src = entry["src"]
            if not isinstance(src, str) or not src.strip():
                raise AmavisError(f"{here}.src: must be a path on the controller, got {src!r}")
            if sources is None:
                result.append({"name": name, "src": src})
                continue
            if src not in sources:
                raise AmavisError(f"{here}.src: {src!r} was not read on the controller")
            content, what = sources[src], f"{here}.src ({src})"
        else:
            content, what = entry["content"], f"{here}.content"
        if not isinstance(content, str) or not content.strip():
            raise AmavisError(f"{what}: must be the non-empty text of the signature file")
        if "\0" in content:
            raise AmavisError(f"{what}: must be text (ClamAV's text signature formats); it holds a NUL byte")
        result.append({"name": name, "content": content if content.endswith("\n") else content + "\n"})
    return result


def check_settings(
    settings: Any,
    prefix: str = "",
    *,
    memtotal_mb: Any = None,
    sources: Mapping[str, str] | None = None,
    processors: Any = None,
) -> dict[str, Any]:
    """Validate and normalize *settings*; errors name ``<prefix><key>`` (and the entry).

    ``max_servers: auto`` becomes a number from *processors* and *memtotal_mb* (auto_max_servers).
    Missing keys take DEFAULTS (``myhostname`` has none). With *memtotal_mb* (the host's memory),
    ClamAV on a host with less than ``clamav_min_memory_mb`` fails unless ``clamav_memory_check``
    is false. Signature files given by ``src`` get their content from *sources* ({src: text}, read
    on the controller); without *sources* they are only checked and keep their ``src``.
    """
    if not isinstance(settings, Mapping):
        raise AmavisError(f"{prefix or 'settings'}: the settings must be a mapping, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise AmavisError(f"{', '.join(prefix + key for key in unknown)}: unknown setting(s)")
    given = {**DEFAULTS, **settings}

    def where(key: str) -> str:
        return prefix + key

    result: dict[str, Any] = {}
    for key in ("enabled", "clamav_enabled", "spamassassin_enabled", "sa_local_tests_only",
                "clamav_concurrent_database_reload", "clamav_memory_check"):  # fmt: skip
        result[key] = _bool(given[key], where(key))
    for key in DESTINY_KEYS:
        result[key] = _choice(given[key], DESTINIES, where(key), upper=True)
    for key in LEVEL_KEYS:
        result[key] = _level(given[key], where(key))
    quarantine = given["quarantine_dir"]
    result["quarantine_dir"] = "" if quarantine == "" else check_path(quarantine, where("quarantine_dir"))
    result["max_servers"] = _max_servers(given["max_servers"], where("max_servers"), processors, memtotal_mb, result)
    result["myhostname"] = _hostname(given["myhostname"], where("myhostname"))
    result["local_domains"] = _domains(given["local_domains"], where("local_domains"))
    result["postfix_filter"] = _choice(given["postfix_filter"], FILTER_MODES, where("postfix_filter"))
    result["signatures"] = _choice(given["signatures"], SIGNATURE_MODES, where("signatures"))
    mirror = given["freshclam_mirror"]
    result["freshclam_mirror"] = (
        _url(mirror, where("freshclam_mirror")) if result["signatures"] == "mirror" or mirror else ""
    )
    result["clamav_signature_files"] = _signature_files(
        given["clamav_signature_files"], where("clamav_signature_files"), sources
    )
    result["clamav_database_timeout"] = _int(
        given["clamav_database_timeout"], where("clamav_database_timeout"), 0, 3600
    )
    result["clamav_min_memory_mb"] = _int(given["clamav_min_memory_mb"], where("clamav_min_memory_mb"), 0, 1 << 30)

    if result["signatures"] == "files" and result["clamav_enabled"] and not result["clamav_signature_files"]:
        raise AmavisError(
            f"{where('clamav_signature_files')}: {where('signatures')} is files, so give at least one signature "
            "file (clamd does not start without a database)"
        )
    if result["postfix_filter"] == "after_queue":
        for key in DESTINY_KEYS:
            if result[key] == "D_REJECT":
                raise AmavisError(
                    f"{where(key)}: D_REJECT needs {where('postfix_filter')}: before_queue; after the queue the "
                    "client has already been told 250, so Postfix can only bounce the message (backscatter). "
                    "Use D_BOUNCE or D_DISCARD, or filter before the queue"
                )
    if memtotal_mb is not None and result["enabled"] and result["clamav_enabled"] and result["clamav_memory_check"]:
        memory = _int(memtotal_mb, "the host's memory (ansible_facts.memtotal_mb)", 0, 1 << 40)
        if memory < result["clamav_min_memory_mb"]:
            raise AmavisError(
                f"{where('clamav_min_memory_mb')}: this host has {memory} MB of memory, less than the "
                f"{result['clamav_min_memory_mb']} MB that ClamAV needs here (clamd holds the official database "
                "in about 1 GB, twice while it reloads). Set "
                f"{where('clamav_enabled')}: false (SpamAssassin only), or "
                f"{where('clamav_concurrent_database_reload')}: false with a lower {where('clamav_min_memory_mb')}, "
                f"or {where('clamav_memory_check')}: false to go ahead anyway"
            )
    return result


#: ClamAV files that tell clamd to ignore signatures or to trust files (false-positive lists).
ALLOW_LIST_EXTENSIONS = ("fp", "sfp", "ign", "ign2")


def settings_warnings(settings: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Legitimate choices in normalized *settings* that let viruses through; each names its variable."""
    if not settings["enabled"]:
        return []
    warnings = []
    if settings["final_virus_destiny"] == "D_PASS" and settings["clamav_enabled"]:
        warnings.append(
            f"{prefix}final_virus_destiny is D_PASS: mail in which ClamAV finds a virus is delivered anyway "
            "(with an X-Amavis-Alert header)"
        )
    if settings["clamav_enabled"]:
        for index, entry in enumerate(settings["clamav_signature_files"]):
            if entry["name"].rsplit(".", 1)[-1] in ALLOW_LIST_EXTENSIONS:
                warnings.append(
                    f"{prefix}clamav_signature_files[{index}].name: {entry['name']} is a ClamAV allow-list "
                    "(.fp/.sfp trust files by their hash, .ign/.ign2 switch signatures off): what it lists is never "
                    "reported as a virus"
                )
    return warnings
