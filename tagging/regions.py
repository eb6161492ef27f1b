"""Region (省/市) of a customer from a stated address or from a libphonenumber geocoder
description such as "广东省深圳市", "内蒙古呼和浩特市" or "新疆阿克苏地区"."""

from __future__ import annotations

import re
from dataclasses import dataclass

# province-level divisions (省级行政区), short names; longest first so 黑龙江 wins over none
PROVINCES: tuple[str, ...] = (
    "黑龙江",
    "内蒙古",
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
)
MUNICIPALITIES = frozenset({"北京", "天津", "上海", "重庆"})
_PROVINCE_SUFFIXES = (
    "壮族自治区",
    "回族自治区",
    "维吾尔自治区",
    "自治区",
    "特别行政区",
    "省",
    "市",
)
_CITY = re.compile(r"^(.{2,12}?)(市|地区|自治州|盟)")


@dataclass(frozen=True)
class Region:
    province: str
    city: str | None


def region_from_text(text: str) -> Region | None:
    """Province and city named at the start of an address or geocoder description."""
    text = re.sub(r"\s+", "", text).removeprefix("中国")
    for province in PROVINCES:
        if text.startswith(province):
            rest = text[len(province) :]
            break
    else:
        return None
    for suffix in _PROVINCE_SUFFIXES:
        if rest.startswith(suffix):
            rest = rest[len(suffix) :]
            break
    if province in MUNICIPALITIES:
        return Region(province, province)
    match = _CITY.match(rest)
    if match is None:
        return Region(province, None)
    city = match.group(1)
    if match.group(2) in ("自治州", "盟"):
        city += match.group(2)  # 恩施土家族苗族自治州 is the name, 恩施土家族苗族 is not
    return Region(province, city)
