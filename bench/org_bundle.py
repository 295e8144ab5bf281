"""A generated org for the contacts benchmarks: ``--users`` users in ``--departments`` departments, as a bundle.

    python bench/org_bundle.py --users 100000 --departments 5000 > var/bench/org.json

Departments form a tree under the root (1) with up to 8 children each; every user sits in one department (every
tenth in a second one), reports to his department's manager, and has a Chinese name, a mobile number and an email.
The same seed gives the same org.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

import orjson

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文斌宇浩凯鹏飞云龙婷雪琳晨欣怡佳思雨梦"
UNITS = ["研发", "市场", "销售", "财务", "人事", "法务", "采购", "运营", "客服", "质量", "物流", "生产"]
CORP = "corpOrg"


def name(rng: random.Random) -> str:
    """A Chinese name of two or three characters."""
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def org_bundle(users: int, departments: int, seed: int = 7) -> dict[str, Any]:
    """The bundle of a generated org (corp ``corpOrg``, credential ``keyOrg``/``secret-org-0001`` with all scopes)."""
    rng = random.Random(seed)
    depts: list[dict[str, Any]] = [{"deptId": 1, "name": "总公司"}]
    for i in range(2, departments + 1):
        parent = 1 if i <= 9 else (i - 2) // 8 + 1
        depts.append({"deptId": i, "name": f"{UNITS[i % len(UNITS)]}{i}部", "parentId": parent})
    people: list[dict[str, Any]] = []
    heads: dict[int, str] = {}
    for i in range(users):
        dept = 1 + i % departments
        user_id = f"user{i:06d}"
        person: dict[str, Any] = {
            "userId": user_id,
            "name": name(rng),
            "departments": [dept] if i % 10 else [dept, 1 + (i * 7) % departments],
            "mobile": f"1{rng.randint(30, 99)}{i:08d}",
            "email": f"{user_id}@org.example",
            "title": rng.choice(("工程师", "经理", "专员", "主管", "顾问")),
        }
        if person["departments"][-1] == dept and len(person["departments"]) == 2:
            person["departments"] = [dept]
        if dept in heads:
            person["manager"] = heads[dept]
        else:
            heads[dept] = user_id
        people.append(person)
    for d in depts:
        if d["deptId"] in heads:
            d["managers"] = [heads[d["deptId"]]]
    return {
        "corp": {"corpId": CORP, "name": "生成的组织"},
        "departments": depts,
        "users": people,
        "roles": [{"roleId": 1, "name": "财务审批", "group": "审批", "members": [p["userId"] for p in people[:50]]}],
        "credentials": [{"appKey": "keyOrg", "appSecret": "secret-org-0001", "scopes": ["*"]}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--departments", type=int, default=5_000)
    args = parser.parse_args()
    sys.stdout.buffer.write(orjson.dumps(org_bundle(args.users, args.departments)))


if __name__ == "__main__":
    main()
