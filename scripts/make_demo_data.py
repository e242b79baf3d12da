"""Write the bundled demo data: synthetic Chinese sentences with nested entities (spans format).

Every sentence is generated here from templates and word lists; none comes from a corpus.
Organisations are built on a place name (北京大学 contains 北京), so entities nest.

    python scripts/make_demo_data.py   # rewrites gplinker/demo/*.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from make_long_data import fill, join  # scripts/ is on sys.path when a script runs

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高")
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞", "平", "刚", "桂英",
         "建华", "晓东", "文博", "思远", "雨桐", "子涵", "浩然", "一鸣", "嘉怡"]
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "天津", "苏州", "长沙",
          "郑州", "青岛", "厦门", "昆明", "大连", "宁波", "合肥", "福州", "济南", "沈阳", "兰州", "贵阳", "南宁"]
ORG_SUFFIX = ["大学", "银行", "第一医院", "科技公司", "研究所", "图书馆", "博物馆", "师范学院"]
MONTHS = [f"{m}月" for m in range(1, 13)]
DAYS = [f"{d}日" for d in (1, 3, 5, 8, 12, 15, 18, 20, 23, 26, 28)]
YEARS = [f"{y}年" for y in range(2015, 2027)]

TEMPLATES = [
    "{person}于{date}加入{org}。",
    "{date}，{person}在{place}参加了一场讲座。",
    "{org}的{person}表示，明年将在{place}开设分部。",
    "记者从{org}获悉，{person}将于{date}赴{place}交流。",
    "{person}和{person2}{date}在{place}见面。",
    "据{org}消息，{place}今年的游客人数明显增加。",
    "{person}毕业于{org}，现居{place}。",
    "{date}，{org}与{org2}签署了合作协议。",
    "来自{place}的{person}获得了{org}颁发的奖学金。",
    "{person}说：“我在{place}生活了十年。”",
    "{org}计划于{date}举办开放日活动。",
    "{place}和{place2}之间的高铁{date}开通。",
]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def date(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(YEARS) + rng.choice(MONTHS) + rng.choice(DAYS)
    return rng.choice(MONTHS) + rng.choice(DAYS)


def sentence(rng: random.Random) -> dict:
    """One sentence with its entities; an organisation also yields its nested place."""

    def value(slot: str) -> tuple[str, str]:
        if slot.startswith("person"):
            return person(rng), "person"
        if slot.startswith("place"):
            return rng.choice(PLACES), "location"
        return date(rng), "date"

    text, entities = fill(rng, rng.choice(TEMPLATES), "", value, PLACES, ORG_SUFFIX)
    entities.sort(key=lambda e: (e["start"], e["end"], e["type"]))
    return {"text": text, "entities": entities}


def long_text(rng: random.Random, n: int) -> dict:
    """Several sentences joined: longer than one demo window, to show sliding windows at work."""
    return join([sentence(rng) for _ in range(n)])


def main() -> None:
    rng = random.Random(20261125)
    out = Path(__file__).resolve().parents[1] / "gplinker" / "demo"
    out.mkdir(parents=True, exist_ok=True)
    train = [sentence(rng) for _ in range(360)] + [long_text(rng, 4) for _ in range(20)]
    dev = [sentence(rng) for _ in range(80)] + [long_text(rng, 5) for _ in range(10)]
    for name, rows in (("train", train), ("dev", dev)):
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(out / "predict.jsonl", "w", encoding="utf-8") as fh:
        for k in range(12):
            row = long_text(rng, 6) if k == 5 else sentence(rng)
            fh.write(json.dumps({"id": f"demo-{k}", "text": row["text"]}, ensure_ascii=False) + "\n")
    print(f"wrote {len(train)} train, {len(dev)} dev, 12 predict lines to {out}")


if __name__ == "__main__":
    main()
