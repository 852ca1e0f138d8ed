# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Do the SPF policy and the RBLs see inbound mail?  Judge what comes before them in a restriction list.

smtpd evaluates a restriction list in order, and the first entry that permits ends that list: the
entries after it are never consulted.  The SPF policy service (``check_policy_service
unix:private/policy-spf``, inserted by the policyd_spf role) and the DNS block lists
(``reject_rbl_client``, ``reject_rhsbl_*``, inserted by the postfix role) sit after
``reject_unauth_destination``.  For an outside client that has not authenticated, sending to a
local recipient, an earlier entry:

- that permits every such client (``permit``, ``permit_auth_destination``, an access check on a
  ``static:`` table that answers OK) means the check is never consulted for inbound mail: an error;
- that may permit some of them (an access check on a table, a restriction class, another policy
  service, ``permit_dnswl_client``, ``permit_rhswl_client``, ``permit_tls_all_clientcerts``, which any
  client with a certificate passes) lets that mail skip it: a warning;
- that only trusts this host's own clients (``permit_mynetworks``, ``permit_sasl_authenticated``,
  ``permit_tls_clientcerts``) or rejects is what the list is for, and passes silently.

The lists are read with the one restriction tokenizer (``group_restrictions``), after the
fragments were merged (the ``insert`` operation places the checks), so that the judgement sees
what smtpd will see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_fragments import (
    FragmentError,
    apply_insert,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_relay import OPEN, action_outcome
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_restrictions import (
    RESTRICTION_PARAMS,
    group_restrictions,
)
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import (
    TABLE_TOKEN_RE,
    PostfixSyntaxError,
    expand_value,
    render_value,
)

#: Entries that permit every outside client sending to a local recipient.
PERMIT_ALL = ("permit", "permit_auth_destination")
#: Entries that permit only clients this host trusts already: passing them is the point of the list.
TRUSTED = ("permit_mynetworks", "permit_sasl_authenticated", "permit_tls_clientcerts", "permit_inet_interfaces")
#: Entries that may permit some outside clients.
PERMIT_SOME = ("permit_dnswl_client", "permit_rhswl_client", "permit_tls_all_clientcerts", "check_policy_service")
RBL_CHECKS = (
    "reject_rbl_client",
    "reject_rhsbl_client",
    "reject_rhsbl_reverse_client",
    "reject_rhsbl_helo",
    "reject_rhsbl_sender",
    "reject_rhsbl_recipient",
)
#: The lists smtpd consults for every message (not ETRN's).
INBOUND_PARAMS = tuple(name for name in RESTRICTION_PARAMS if name != "smtpd_etrn_restrictions")


def is_spf_policy(entry: str) -> bool:
    """Whether a grouped entry calls an SPF policy service (the policyd_spf role's ``policy-spf``)."""
    name, _sep, arg = entry.partition(" ")
    return name == "check_policy_service" and "spf" in arg.lower()


def _guard(entry: str) -> str | None:
    """What a grouped entry checks that an early permit would skip: 'the SPF policy', 'the RBL checks', or None."""
    if is_spf_policy(entry):
        return "the SPF policy"
    if entry.partition(" ")[0] in RBL_CHECKS:
        return "the DNS block list checks"
    return None


def _table_permits_all(table: str) -> bool:
    match = TABLE_TOKEN_RE.match(table)
    return bool(match) and match.group(1) == "static" and action_outcome(match.group(2).strip("{} ")) == OPEN


def _skips(entry: str, classes: set[str]) -> str | None:
    """'all', 'some' or None: whether an entry permits every, some or no outside client to a local recipient."""
    name, _sep, arg = entry.partition(" ")
    if _guard(entry):  # the SPF policy answers PREPEND or a reject, never OK; an RBL check only rejects
        return None
    if name in PERMIT_ALL:
        return "all"
    if name in TRUSTED or name.startswith(("reject", "defer", "warn_if_reject")):
        return None
    if arg and name.startswith("check_") and name.endswith("_access"):
        return "all" if _table_permits_all(arg) else "some"
    if not arg and TABLE_TOKEN_RE.match(name):  # a bare type:table is an access check of the list's context
        return "all" if _table_permits_all(name) else "some"
    if name in PERMIT_SOME or name in classes:
        return "some"
    return None


def judge_inbound(main: Mapping[str, Any], where: str = "") -> tuple[list[str], list[str]]:
    """(errors, warnings) for the restriction lists of *main* in which an early entry skips SPF or the RBLs.

    *main* is the merged main.cf mapping (``$name`` references are expanded from it); *where*
    prefixes each message (a variable or a master.cf service).  A list that cannot be read is
    left to the validation that reports it.
    """
    errors: list[str] = []
    warnings: list[str] = []
    try:
        classes = set(group_restrictions(expand_value(render_value(main.get("smtpd_restriction_classes", "")), main)))
    except (PostfixSyntaxError, ValueError):
        classes = set()
    for param in INBOUND_PARAMS:
        if param not in main:
            continue
        try:
            entries = group_restrictions(expand_value(render_value(main[param]), main))
        except (PostfixSyntaxError, ValueError):
            continue
        guarded = [(index, _guard(entry)) for index, entry in enumerate(entries)]
        for what in dict.fromkeys(kind for _index, kind in guarded if kind):
            first = next(index for index, kind in guarded if kind == what)
            for position, entry in enumerate(entries[:first], start=1):
                verdict = _skips(entry, classes)
                if verdict == "all":
                    errors.append(
                        f"{where}parameter {param}: '{entry}' (entry {position}) permits every outside client that "
                        f"sends to a local recipient before '{entries[first]}', so inbound mail never reaches {what}"
                    )
                    break
                if verdict == "some":
                    warnings.append(
                        f"{where}parameter {param}: '{entry}' (entry {position}) comes before '{entries[first]}': "
                        f"the mail it permits skips {what}"
                    )
    return errors, warnings


def judge_recipient_restrictions(
    restrictions: Any,
    inserts: Sequence[Mapping[str, Any]],
    where: str,
) -> tuple[list[str], list[str]]:
    """:func:`judge_inbound` of a role's recipient restrictions with the fragments' *inserts* applied.

    The controller-side form of the check: *restrictions* is the postfix role's
    ``postfix_recipient_restrictions``, *inserts* the ``insert`` entries of the fragments (the
    postfix role's RBL checks, the policyd_spf role's policy service), applied with the merge's own
    insert operation. An insert that cannot be applied is left to the merge, which reports it.
    """
    main: dict[str, Any] = {"smtpd_recipient_restrictions": restrictions}
    try:
        for insert in inserts:
            apply_insert(where, main, insert)
    except (FragmentError, PostfixSyntaxError, KeyError, TypeError, AttributeError):
        return [], []
    return judge_inbound(main, where=f"{where}: ")
