# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""policyd-spf.conf of postfix-policyd-spf-python: validate settings, render them, apply them safely.

``check_settings`` validates the settings (keys are this collection's snake_case names, which
the policyd_spf role prefixes with ``policyd_spf_``) and ``render_config`` writes the file. The
``PolicydSpfConfig`` backend of the policyd_spf_config module then:

1. parses the candidate file with the package's own parser (``spf_engine.policydspfsupp``, run
   by the daemon's interpreter), where any message the parser logs is an error and every value
   must read back as written;
2. replaces the live file atomically;
3. reloads Postfix, because smtpd keeps its policy connections (and so the running daemons with
   the old settings) open;
4. checks health: smtpd greets 220, the policy service answers a request, and neither logged an
   error since the reload; otherwise the previous file comes back and Postfix is restarted.

As in dovecot_config, every side effect is an injected callable, so that every failure path is
unit tested without a host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ansible_collections.postmaster.mailserver.plugins.module_utils.common.call_record import Footprint
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.config_module import ConfigModuleError
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.mail_paths import guard
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.path_state import Touched
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.private_file import (
    read_text,
    replace_keeping_mode,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.common.service_health import (
    HealthCheckError,
    ServiceBackend,
    restart_postfix,
    run_checked,
    smtp_probe,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_relay import cover_everything
from ansible_collections.postmaster.mailserver.plugins.module_utils.spf.spf import is_domain

ENV = {"LC_ALL": "C"}
HEADER = "# Managed by Ansible (postmaster.mailserver.policyd_spf_config); do not edit.\n"
DEFAULT_PATH = "/etc/postfix-policyd-spf-python/policyd-spf.conf"
DEFAULT_DAEMON = "/usr/bin/policyd-spf"
DEFAULT_SOCKET = "/var/spool/postfix/private/policy-spf"
#: Journal entries whose text starts with one of these are errors, whatever their priority
#: (policyd-spf logs its errors, and its tracebacks, at the default priority).
BAD_PREFIXES = ("fatal:", "panic:", "error:", "ERROR", "Traceback")

HELO_REJECT = ("SPF_Not_Pass", "Softfail", "Fail", "Null", "False", "No_Check")
MAIL_FROM_REJECT = ("SPF_Not_Pass", "Softfail", "Fail", "False", "No_Check")
HEADER_TYPES = ("SPF", "AR")

# kind: (conf name, kind, extra). Kinds: choice (extra = choices), truefalse ("True"/"False"),
# yesno ("Yes"/"No"), int (extra = (minimum, maximum)), cidrs, domains, hostname, inverted (TestOnly).
SETTINGS: dict[str, tuple[str, str, Any]] = {
    "debug_level": ("debugLevel", "int", (0, 5)),
    "test_only": ("TestOnly", "inverted", None),
    "helo_reject": ("HELO_reject", "choice", HELO_REJECT),
    "mail_from_reject": ("Mail_From_reject", "choice", MAIL_FROM_REJECT),
    "permerror_reject": ("PermError_reject", "truefalse", None),
    "temperror_defer": ("TempError_Defer", "truefalse", None),
    "no_mail": ("No_Mail", "truefalse", None),
    "skip_addresses": ("skip_addresses", "cidrs", None),
    "whitelist": ("Whitelist", "cidrs", None),
    "helo_whitelist": ("HELO_Whitelist", "domains", None),
    "domain_whitelist": ("Domain_Whitelist", "domains", None),
    "domain_whitelist_ptr": ("Domain_Whitelist_PTR", "domains", None),
    "reject_not_pass_domains": ("Reject_Not_Pass_Domains", "domains", None),
    "header_type": ("Header_Type", "choice", HEADER_TYPES),
    "authserv_id": ("Authserv_Id", "hostname", None),
    "hide_receiver": ("Hide_Receiver", "yesno", None),
    "enhanced_status_codes": ("SPF_Enhanced_Status_Codes", "yesno", None),
    "lookup_time": ("Lookup_Time", "int", (1, 300)),
    "whitelist_lookup_time": ("Whitelist_Lookup_Time", "int", (1, 300)),
    "void_limit": ("Void_Limit", "int", (0, 100)),
}
#: Settings written even when empty: an empty skip_addresses turns off the default (loopback) skip.
WRITE_EMPTY = ("skip_addresses",)
#: The parser (spf_engine.policydspfsupp) converts these with int(); the others stay strings.
INT_NAMES = ("debugLevel", "TestOnly", "Lookup_Time", "Whitelist_Lookup_Time", "Void_Limit")

_BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}

#: Run by the daemon's own interpreter: parse a candidate with the package's parser, capturing
#: what it logs (it reports unknown names and bad lines to syslog and goes on).
PARSER_SCRIPT = r"""
import json, sys, syslog
messages = []
syslog.syslog = lambda *args: messages.append(str(args[-1]))
from spf_engine import policydspfsupp
data = {}
try:
    data = policydspfsupp._readConfigFile(sys.argv[1], dict(policydspfsupp.defaultConfigData), {"debugLevel": 1})
except Exception as exc:
    messages.append("%s: %s" % (type(exc).__name__, exc))
print(json.dumps({"messages": messages,
                  "config": {k: v for k, v in data.items() if isinstance(v, (str, int, float))}}))
"""


class PolicydSpfError(ConfigModuleError):
    """Validation, apply or health check failed."""


# -- settings --------------------------------------------------------------------


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise PolicydSpfError(f"{where}: must be true or false, got {value!r}")


def _list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [item for item in re.split(r"[\s,]+", value) if item]
    if not isinstance(value, (list, tuple)):
        raise PolicydSpfError(f"{where}: must be a list, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise PolicydSpfError(f"{where}[{index}]: must be a non-empty string, got {item!r}")
    return [item.strip() for item in value]


def _postfix_form(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return f"[{net.network_address}]/{net.prefixlen}" if net.version == 6 else net.with_prefixlen


def _cidrs(value: Any, where: str) -> list[str]:
    """Addresses or networks of clients whose SPF is not checked; never every address (one or together)."""
    items = _list(value, where)
    nets = []
    for index, item in enumerate(items):
        try:
            net = ipaddress.ip_network(item, strict=True)
        except ValueError as exc:
            raise PolicydSpfError(f"{where}[{index}]: {item!r} is not an IP address or network: {exc}") from None
        if cover_everything(where, [_postfix_form(net)]) is not None:
            raise PolicydSpfError(
                f"{where}[{index}]: {item} is every address, so policyd-spf would check no client's SPF; "
                "list the hosts whose mail should skip SPF"
            )
        nets.append(_postfix_form(net))
    if nets and cover_everything(where, nets) is not None:
        raise PolicydSpfError(
            f"{where}: {', '.join(items)} together cover every address, so policyd-spf would check no client's SPF; "
            "list the hosts whose mail should skip SPF"
        )
    return items


def _domains(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    for index, item in enumerate(items):
        if not is_domain(item):
            raise PolicydSpfError(f"{where}[{index}]: {item!r} is not a fully qualified domain name")
    return items


def _choice(value: Any, choices: Sequence[str], where: str) -> str:
    if isinstance(value, bool):  # YAML's False for Mail_From_reject = False
        value = str(value)
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    raise PolicydSpfError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")


def _int(value: Any, bounds: tuple[int, int], where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise PolicydSpfError(f"{where}: must be a whole number, got {value!r}")
    number = int(value)
    if not bounds[0] <= number <= bounds[1]:
        raise PolicydSpfError(f"{where}: must be between {bounds[0]} and {bounds[1]}, got {number}")
    return number


TIME_LIMIT_RE = re.compile(r"[0-9]+[smhdw]?\Z")


def check_time_limit(value: Any, name: str = "policyd_spf_time_limit") -> str:
    """Check the policy service's Postfix time limit (``3600s``, ``1h``); return it as text."""
    if isinstance(value, bool) or not TIME_LIMIT_RE.match(str(value)):
        raise PolicydSpfError(f"{name} must be a Postfix time such as 3600s or 1h (got {json.dumps(value)}).")
    return str(value)


def check_settings(settings: Any, prefix: str = "settings.") -> dict[str, Any]:
    """Validate *settings* (keys of SETTINGS); return them normalized. Errors name ``<prefix><key>``."""
    if not isinstance(settings, Mapping):
        raise PolicydSpfError(f"{prefix.rstrip('._') or 'settings'}: must be a mapping, got {type(settings).__name__}")
    unknown = sorted(str(key) for key in settings if key not in SETTINGS)
    if unknown:
        raise PolicydSpfError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(prefix + key for key in unknown)} "
            f"(known: {', '.join(SETTINGS)})"
        )
    result: dict[str, Any] = {}
    for key, value in settings.items():
        where = prefix + key
        _name, kind, extra = SETTINGS[key]
        if value is None:
            continue
        if kind == "choice":
            result[key] = _choice(value, extra, where)
        elif kind in ("truefalse", "yesno", "inverted"):
            result[key] = _bool(value, where)
        elif kind == "int":
            result[key] = _int(value, extra, where)
        elif kind == "cidrs":
            result[key] = _cidrs(value, where)
        elif kind == "domains":
            result[key] = _domains(value, where)
        elif kind == "hostname":
            if not isinstance(value, str) or (value.strip() and not is_domain(value.strip())):
                raise PolicydSpfError(f"{where}: must be a fully qualified host name, got {value!r}")
            result[key] = value.strip()
    if result.get("header_type") == "AR" and not result.get("authserv_id"):
        raise PolicydSpfError(
            f"{prefix}authserv_id: give the host name that Authentication-Results headers name "
            f"when {prefix}header_type is AR"
        )
    return result


def conf_values(settings: Mapping[str, Any]) -> dict[str, str]:
    """The lines of the file for normalized *settings*: {conf name: text}, in SETTINGS order."""
    lines: dict[str, str] = {}
    for key, (name, kind, _extra) in SETTINGS.items():
        if key not in settings:
            continue
        value = settings[key]
        if kind == "truefalse":
            text = "True" if value else "False"
        elif kind == "yesno":
            text = "Yes" if value else "No"
        elif kind == "inverted":  # TestOnly = 0 means: never reject (the package's name is inverted)
            text = "0" if value else "1"
        elif kind in ("cidrs", "domains"):
            text = ",".join(value)
        else:
            text = str(value)
        if text or key in WRITE_EMPTY:
            lines[name] = text
    return lines


def render_config(settings: Mapping[str, Any]) -> str:
    """The text of policyd-spf.conf for normalized *settings*."""
    body = "".join(f"{name} = {text}\n".replace(" \n", "\n") for name, text in conf_values(settings).items())
    return HEADER + body


def compare_parsed(expected: Mapping[str, str], parsed: Mapping[str, Any]) -> list[str]:
    """Differences between what was written and what the package's parser read back."""
    problems = []
    for name, text in expected.items():
        want: Any = int(text) if name in INT_NAMES else text
        got = parsed.get(name)
        if got != want:
            problems.append(f"{name}: wrote {text!r}, the parser read {got!r}")
    return problems


# -- probes ------------------------------------------------------------------------

POLICY_REQUEST = (
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=127.0.0.1\n"
    "client_name=localhost\n"
    "helo_name=localhost\n"
    "sender=\n"
    "recipient=postmaster@localhost\n"
    "instance=postmaster.health.check\n"
    "queue_id=\n"
    "\n"
)


def _policy_answer(raw: str, where: str) -> str:
    answer = raw.strip()
    if not answer.startswith("action="):
        raise HealthCheckError(f"{where} answered {answer[:200]!r}, expected an 'action=' line")
    return answer.splitlines()[0]


def policy_probe(path: str, timeout: float) -> str:
    """Send one policy request to the socket at *path*; return the ``action=`` line of the answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(POLICY_REQUEST.encode())
        data = b""
        while b"\n\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return _policy_answer(data.decode("utf-8", "replace"), f"the policy service at {path}")


# -- backend -----------------------------------------------------------------------


class PolicydSpfConfig(ServiceBackend):
    """Check, write and apply policyd-spf.conf, with Postfix reloaded and health-checked."""

    # The result of a call that changed nothing (see config_module.unchanged_result).
    UNCHANGED: ClassVar[dict[str, Any]] = {"reloaded": False, "policy_answer": None}

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        path: str = DEFAULT_PATH,
        daemon: str = DEFAULT_DAEMON,
        policy_socket: str = DEFAULT_SOCKET,
        reload: bool = True,
        smtp: Callable[[str, int, float], str] = smtp_probe,
        policy: Callable[[str, float], str] = policy_probe,
        exists: Callable[[str], bool] = os.path.exists,
        **common: Any,
    ) -> None:
        try:
            self.settings = check_settings(settings)
        except PolicydSpfError as exc:
            raise PolicydSpfError(f"{exc.msg}; nothing was changed") from None
        self.text = render_config(self.settings)
        self.path = path
        self.daemon = daemon
        self.policy_socket = policy_socket
        self._keep(**{"health_port": 25, **common})
        self.reload = reload
        self._smtp = smtp
        self._policy = policy
        self._exists = exists

    # -- helpers -------------------------------------------------------------

    def run(self, argv: Sequence[str], data: str | None = None) -> tuple[int, str, str]:
        """Run *argv* (a list, never a shell string) with LC_ALL=C."""
        kwargs: dict[str, Any] = {"environ_update": dict(ENV)}
        if data is not None:
            kwargs["data"] = data
            kwargs["binary_data"] = True
        rc, out, err = self._run(list(argv), **kwargs)
        return rc, out or "", err or ""

    def interpreter(self) -> str | None:
        """The daemon's own interpreter (its ``#!`` line), so the parser runs where the daemon runs."""
        try:
            with open(self.daemon, encoding="utf-8", errors="replace") as handle:
                first = handle.readline()
        except OSError:
            return None
        if first.startswith("#!"):
            words = first[2:].split()
            if words and os.path.isabs(words[0]):
                return words[0]
        return self._get_bin_path("python3")

    # -- check ---------------------------------------------------------------

    def check_candidate(self) -> None:
        """Parse the candidate with the package's own parser; any logged message or a changed value fails."""
        python = self.interpreter()
        if python is None:
            if self.check_mode:
                self.warnings.append(f"{self.daemon} not found: only the Python validation ran (check mode)")
                return
            raise PolicydSpfError(f"{self.daemon} was not found; is postfix-policyd-spf-python installed?")
        workdir = tempfile.mkdtemp(prefix="postmaster-policyd-spf-")
        try:
            candidate = os.path.join(workdir, os.path.basename(self.path))
            with open(candidate, "w", encoding="utf-8") as handle:
                handle.write(self.text)
            rc, out, err = self.run([python, "-c", PARSER_SCRIPT, candidate])
        finally:
            with contextlib.suppress(OSError):
                for name in os.listdir(workdir):
                    os.unlink(os.path.join(workdir, name))
                os.rmdir(workdir)
        try:
            report = json.loads(out)
            messages = [str(message).replace(candidate, self.path) for message in report["messages"]]
            parsed = report["config"]
        except (ValueError, KeyError, TypeError):
            raise PolicydSpfError(
                f"the policyd-spf parser could not check the candidate (rc={rc}); nothing was changed: "
                f"{(err or out).strip()[-2000:]}",
                parser_rc=rc,
            ) from None
        problems = messages + compare_parsed(conf_values(self.settings), parsed)
        if rc != 0 or problems:
            raise PolicydSpfError(
                "the policyd-spf parser refused the candidate configuration; nothing was changed: "
                + "; ".join(problems or [err.strip()]),
                parser_rc=rc,
                parser_messages=problems,
            )

    # -- apply ---------------------------------------------------------------

    def write_file(self, text: str, touched: Touched | None = None) -> None:
        """Write *text* to the file atomically; keep an existing file's mode and owner, else 0644.

        *touched* remembers the file and each directory created for it, for a rollback.
        """
        directory = os.path.dirname(self.path) or "."
        if touched is None:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        else:
            touched.makedirs(directory, mode=0o755)
        replace_keeping_mode(self._atomic_move, self.path, text, touched=touched)

    def _postfix(self) -> str:
        postfix = self._get_bin_path("postfix")
        if not postfix:
            raise HealthCheckError("postfix was not found")
        return postfix

    def _postfix_running(self) -> bool:
        postfix = self._get_bin_path("postfix")
        return bool(postfix) and self.run([postfix, "status"])[0] == 0

    def _postfix_do(self, verb: str) -> None:
        """``postfix reload``, or a restart through systemd (or stop and start) for a rollback.

        A policy service that failed at start is throttled by the master daemon, and a reload keeps
        that state; a restart clears it.
        """
        postfix = self._postfix()
        if verb == "reload":
            run_checked(self.run, [postfix, "reload"])
        else:
            restart_postfix(self.run, self._get_bin_path, postfix)

    def _retry(self, what: str, probe: Callable[[float], str]) -> str:
        return self._wait(f"{what} did not answer", probe, attempt_timeout=30.0)

    def _wait_for_smtp(self) -> str:
        return self._retry(
            f"smtpd on {self.health_host}:{self.health_port}",
            lambda timeout: self._smtp(self.health_host, self.health_port, timeout),
        )

    def _probe_policy(self, running: bool) -> str:
        """Ask the policy service a question: through Postfix's socket when Postfix runs and the socket exists,
        else the daemon itself (a socket left by a stopped Postfix answers nothing)."""
        if running and self.policy_socket and self._exists(self.policy_socket):
            return self._retry(
                f"the policy service ({self.policy_socket})", lambda timeout: self._policy(self.policy_socket, timeout)
            )
        if running and self.policy_socket:
            self.warnings.append(
                f"{self.policy_socket} does not exist (no policy-spf service in master.cf yet): "
                f"{self.daemon} was asked directly instead"
            )
        rc, out, err = self.run([self.daemon, self.path], data=POLICY_REQUEST)
        if rc != 0:
            raise HealthCheckError(f"{self.daemon} {self.path} failed (rc={rc}): {(err or out).strip()[-1000:]}")
        return _policy_answer(out, self.daemon)

    def _check_journal(self, since: float) -> None:
        self._check_journal_for("errors were logged after the reload", since, ("postfix", "policyd-spf"), BAD_PREFIXES)

    def health(self, since: float, running: bool) -> str:
        """Raise HealthCheckError unless smtpd (when running) and the policy service answer, with no error logged."""
        if running:
            self._wait_for_smtp()
        answer = self._probe_policy(running)
        self._sleep(1)  # give journald a moment to receive what the probes caused
        self._check_journal(since)
        return answer

    def apply(self) -> dict[str, Any]:
        """Write the file, reload Postfix and check health; restore the previous file on failure."""
        # The file and any directory created for it, as they were: content, owner, group and mode.
        touched = Touched()
        try:
            self.write_file(self.text, touched)
        except OSError as exc:
            touched.restore()
            raise PolicydSpfError(f"writing {self.path} failed: {exc}") from exc
        result: dict[str, Any] = {"reloaded": False}
        if not self.reload:
            return result
        since = self._clock()
        running = self._postfix_running()
        try:
            if running:
                self._postfix_do("reload")
                result["reloaded"] = True
            else:
                self.warnings.append("postfix is not running: nothing was reloaded")
            if self.health_check:
                result["policy_answer"] = self.health(since, running)
        except HealthCheckError as exc:
            errors = touched.restore()
            rollback = f"the previous {self.path} was restored"
            if errors:
                rollback += f" (but restoring failed: {'; '.join(errors)})"
            try:
                if running:
                    self._postfix_do("restart")
                    rollback += " and Postfix restarted"
                    if self.health_check:
                        self._wait_for_smtp()
            except (HealthCheckError, OSError) as again:
                rollback = f"{rollback}, but {again}"
            raise PolicydSpfError(f"health check failed: {exc}; {rollback}", rolled_back=True) from exc
        return result

    # -- entry point -----------------------------------------------------------

    def footprint(self) -> Footprint:
        """What a run without a change compares: policyd-spf.conf (the service is spawned by Postfix)."""
        return Footprint([self.path])

    def execute(self) -> dict[str, Any]:
        """Do everything; return the module result (``diff`` is always filled, the module filters it)."""
        guard(PolicydSpfError, self.path, "path", kind="file")
        previous = read_text(self.path)
        changed = previous != self.text
        result: dict[str, Any] = {
            "changed": changed,
            "path": self.path,
            "settings": conf_values(self.settings),
            "reloaded": False,
            "diff": {
                "before_header": self.path,
                "after_header": self.path,
                "before": previous or "",
                "after": self.text,
            },
        }
        if changed:
            self.check_candidate()
            if not self.check_mode:
                result.update(self.apply())
        result["warnings"] = list(self.warnings)
        return result
