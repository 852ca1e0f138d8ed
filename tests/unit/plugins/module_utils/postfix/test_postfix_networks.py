# Copyright (c) postmaster.mailserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_networks import validate_cidr_list
from ansible_collections.postmaster.mailserver.plugins.module_utils.postfix.postfix_syntax import PostfixValidationError


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["127.0.0.0/8"], ["127.0.0.0/8"]),
        ("127.0.0.0/8, 10.0.0.1 192.168.0.0/16", ["127.0.0.0/8", "10.0.0.1", "192.168.0.0/16"]),
        (["::1/128"], ["[::1]/128"]),
        (["[::1]/128"], ["[::1]/128"]),
        (["[::1]"], ["[::1]"]),
        (["::1"], ["[::1]"]),
        (["2001:DB8::/32"], ["[2001:db8::]/32"]),
        (["[2001:0db8:0000::]/32"], ["[2001:db8::]/32"]),
        (["[::ffff:127.0.0.0]/104"], ["[::ffff:127.0.0.0]/104"]),
        (["::ffff:10.1.2.3"], ["[::ffff:10.1.2.3]"]),
        (["fe80::/10"], ["[fe80::]/10"]),
        (["0.0.0.0/0"], ["0.0.0.0/0"]),
        (["!192.168.1.0/24", "192.168.0.0/16"], ["!192.168.1.0/24", "192.168.0.0/16"]),
        (["!::1"], ["![::1]"]),
        (["hash:/etc/postfix/network_table"], ["hash:/etc/postfix/network_table"]),
        (["cidr:/etc/postfix/nets.cidr"], ["cidr:/etc/postfix/nets.cidr"]),
        (["$config_directory/mynetworks"], ["$config_directory/mynetworks"]),
        (["/etc/postfix/network_table"], ["/etc/postfix/network_table"]),
        ([], []),
        (None, []),
    ],
)
def test_validate_cidr_list_ok(items, expected):
    assert validate_cidr_list("mynetworks", items) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "192.168.1.5/24",
            r"'192.168.1.5/24' is not a valid network: host bits are set \(did you mean 192.168.1.0/24\?\)",
        ),
        ("10.0.0.0/33", r"'10.0.0.0/33' is not a valid network: prefix /33 is longer than 32 bits"),
        ("::1/129", r"prefix /129 is longer than 128 bits"),
        ("[2001:db8::1]/32", r"host bits are set"),
        ("10.0.0.0/abc", r"'10.0.0.0/abc' has an invalid prefix length"),
        ("10.0.0.0/255.0.0.0", r"has an invalid prefix length"),
        ("10.0.0.0/", r"has an invalid prefix length"),
        ("garbage", r"'garbage' is not an IP address or network"),
        ("300.1.1.1", r"'300.1.1.1' is not an IP address or network"),
        ("[10.0.0.0]/8", r"only IPv6 addresses are written in \[brackets\]"),
        ("foo:/etc/x", r"'foo:/etc/x' is not an IP address or network"),
        ("fe80::zz/64", r"is not an IP address or network"),
        ("!", r"'!' is not an IP address or network"),
        ("example.com", r"'example.com' is not an IP address"),
    ],
)
def test_validate_cidr_list_errors_name_param_and_item(item, message):
    with pytest.raises(PostfixValidationError, match=r"^parameter mynetworks: .*" + message):
        validate_cidr_list("mynetworks", ["127.0.0.0/8", item])


def test_validate_cidr_list_bad_value_type():
    with pytest.raises(PostfixValidationError, match="parameter mynetworks: cannot render"):
        validate_cidr_list("mynetworks", [{"a": 1}])
