"""Synthetic CLUENER-like sentences (nested entities) and documents joined from them, for scripts/bench_long.py.

Every sentence is generated here from templates and word lists; none comes from a corpus.
Entity types: person, organization, location, book (the title with its 《》). An organisation
built on a place name nests it (北京大学 ⊃ 北京); sentences are 20-40 characters, like CLUENER's
(≤ 50). Spans format: {"text", "entities": [{"start", "end" (exclusive), "type", "text"}]}.
A document is consecutive sentences joined with no separator, every gold span shifted along.
`relation_sentences` and `event_sentences` write the same kind of sentences in the DuIE 2.0 and DuEE
1.0 formats, with their schemas (`RELATION_SCHEMA`, `EVENT_SCHEMA`): triples and events always lie
inside one sentence, so on documents a triple or event across sentences is an error.

    python scripts/make_long_data.py OUT_DIR                 # train.jsonl 2,000, dev.jsonl 600, docs.jsonl
    python scripts/make_long_data.py OUT_DIR --train 200 --dev 60
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐韩冯邓曹彭曾萧田董潘袁蔡蒋余")
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞", "平", "刚", "桂英",
         "建华", "晓东", "文博", "思远", "雨桐", "子涵", "浩然", "一鸣", "嘉怡", "志强", "秀兰", "海燕", "国庆"]
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "天津", "苏州", "长沙",
          "郑州", "青岛", "厦门", "昆明", "大连", "宁波", "合肥", "福州", "济南", "沈阳", "兰州", "贵阳", "南宁",
          "哈尔滨", "石家庄", "乌鲁木齐", "呼和浩特", "香港", "台北", "东京", "巴黎", "伦敦", "纽约", "温州", "无锡"]
ORG_SUFFIX = ["大学", "银行", "人民医院", "科技公司", "研究院", "图书馆", "博物馆", "师范大学", "足球俱乐部", "电视台",
              "日报社", "交响乐团"]
BRANDS = ["华星", "远航", "青禾", "蓝海", "启明", "恒通", "白石", "金桥", "云帆", "长风"]
BRAND_SUFFIX = ["集团", "公司", "基金会", "出版社"]
TITLE_A = ["春风", "远山", "星河", "长夜", "故乡", "旧梦", "白鸟", "灯塔", "荒原", "河流", "雪国",
           "归途", "少年", "海风"]
TITLE_B = ["", "的故事", "之歌", "往事", "与我", "十年", "的秘密", "纪事"]
PREFIX = ["", "", "据报道，", "昨天，", "今年春天，", "记者了解到，", "上周末，"]
SUFFIX = ["。", "。", "，引起了广泛关注。", "，现场气氛热烈。", "，受到读者好评。", "，前景令人期待。"]

TEMPLATES = [
    "{person}毕业于{org}，现在在{place}工作",
    "{person}在{place}参加了一场关于{book}的讲座",
    "{org}的{person}表示，明年将在{place}开设分部",
    "{person}和{person2}在{place}见面，讨论了合作事宜",
    "{person}的新书{book}由{brand}出版",
    "{brand}宣布与{org}签署了长期合作协议",
    "来自{place}的{person}获得了{org}颁发的奖学金",
    "{person}说：“我在{place}生活了很多年。”",
    "{org}计划在{place2}举办读书节，推荐{book}",
    "{place}和{place2}之间的高铁线路正式开通",
    "{person}把{book}推荐给了{org}的学生们",
    "{brand}的创始人{person}出生在{place}",
    "{person}在{org}做了题为{book}的报告",
    "{person}带着{book}去了{place}旅行",
    "{org}的研究人员{person}回到了{place}",
]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def book(rng: random.Random) -> str:
    return "《" + rng.choice(TITLE_A) + rng.choice(TITLE_B) + "》"


def fill(rng: random.Random, template: str, text: str, value: Callable[[str], tuple[str, str]],
         places: Sequence[str], org_suffixes: Sequence[str]) -> tuple[str, list[dict]]:
    """`template` filled after `text`: each {slot} by value(slot) -> (text, label), or, for an {org} slot, a place
    plus a suffix with the place nested inside as a location. Returns the text and its entities (spans format)."""
    entities: list[dict] = []
    for k, part in enumerate(template.replace("}", "{").split("{")):
        if k % 2 == 0:
            text += part
            continue
        start = len(text)
        if part.startswith("org"):
            place = rng.choice(places)
            filled, label = place + rng.choice(org_suffixes), "organization"
            entities.append({"start": start, "end": start + len(place), "type": "location", "text": place})
        else:
            filled, label = value(part)
        text += filled
        entities.append({"start": start, "end": start + len(filled), "type": label, "text": filled})
    return text, entities


def sentence(rng: random.Random, min_chars: int = 20, max_chars: int = 40) -> dict:
    """One sentence of min_chars..max_chars characters with its entities (spans format), nested ones included."""

    def value(slot: str) -> tuple[str, str]:
        if slot.startswith("person"):
            return person(rng), "person"
        if slot.startswith("place"):
            return rng.choice(PLACES), "location"
        if slot == "book":
            return book(rng), "book"
        return rng.choice(BRANDS) + rng.choice(BRAND_SUFFIX), "organization"  # brand

    while True:
        prefix = rng.choice(PREFIX)
        text, entities = fill(rng, rng.choice(TEMPLATES), prefix, value, PLACES, ORG_SUFFIX)
        if not text.endswith("。”"):
            text += rng.choice(SUFFIX)
        if min_chars <= len(text) <= max_chars:
            entities.sort(key=lambda e: (e["start"], e["end"], e["type"]))
            return {"text": text, "entities": entities}


# Relations: template, then (subject slot, predicate, object slot) of its triples (none: a negative).
RELATION_TEMPLATES = [
    ("{person}毕业于{org}，现在在{place}工作", [("person", "毕业院校", "org"), ("person", "工作地点", "place")]),
    ("{person}的新书{book}由{brand}出版", [("book", "作者", "person"), ("book", "出版社", "brand")]),
    ("来自{place}的{person}获得了{org}颁发的奖学金", [("person", "籍贯", "place")]),
    ("{brand}的创始人{person}出生在{place}", [("brand", "创始人", "person"), ("person", "出生地", "place")]),
    ("{org}的研究人员{person}回到了{place}", [("person", "任职于", "org")]),
    ("{person}在{org}做了题为{book}的报告", [("book", "作者", "person")]),
    ("{person}在{place}参加了一场关于{book}的讲座", []),
    ("{person}和{person2}在{place}见面，讨论了合作事宜", []),
    ("{place}和{place2}之间的高铁线路正式开通", []),
]
RELATION_SCHEMA = {  # predicate -> (subject type, object type)
    "毕业院校": ("人物", "学校"), "工作地点": ("人物", "地点"), "作者": ("图书作品", "人物"),
    "出版社": ("图书作品", "出版社"), "籍贯": ("人物", "地点"), "创始人": ("企业", "人物"),
    "出生地": ("人物", "地点"), "任职于": ("人物", "机构"),
}
# Events: template, then (event type, trigger word (in the template's own text), [(role, slot)]).
EVENT_TEMPLATES = [
    ("{person}毕业于{org}，现在在{place}工作", [("人生-毕业", "毕业", [("毕业者", "person"), ("学校", "org")])]),
    ("{brand}宣布与{org}签署了长期合作协议", [("组织关系-签约", "签署", [("甲方", "brand"), ("乙方", "org")])]),
    ("{person}和{person2}在{place}见面，讨论了合作事宜",
     [("交往-会见", "见面", [("会见方", "person"), ("会见方", "person2"), ("地点", "place")])]),
    ("来自{place}的{person}获得了{org}颁发的奖学金",
     [("竞赛行为-获奖", "获得", [("获奖人", "person"), ("颁奖机构", "org")])]),
    ("{place}和{place2}之间的高铁线路正式开通", [("交通-开通", "开通", [("起点", "place"), ("终点", "place2")])]),
    ("{org}的研究人员{person}回到了{place}", [("人生-返回", "回到", [("返回者", "person"), ("目的地", "place")])]),
    ("{person}的新书{book}由{brand}出版", [("产品行为-发布", "出版", [("发布方", "brand"), ("发布产品", "book")])]),
    ("{person}带着{book}去了{place}旅行", []),
]
EVENT_SCHEMA = {t: sorted({r for r, _ in roles}) for _, events in EVENT_TEMPLATES for t, _, roles in events}


def slot_value(rng: random.Random, slot: str) -> str:
    """A fresh mention for a {slot}: person, place, book, brand (a company) or org (a place plus a suffix)."""
    if slot.startswith("person"):
        return person(rng)
    if slot.startswith("place"):
        return rng.choice(PLACES)
    if slot == "book":
        return book(rng)
    if slot == "brand":
        return rng.choice(BRANDS) + rng.choice(BRAND_SUFFIX)
    return rng.choice(PLACES) + rng.choice(ORG_SUFFIX)  # org


def filled(rng: random.Random, template: str, min_chars: int = 20,
           max_chars: int = 40) -> tuple[str, dict[str, tuple[int, str]], list[tuple[int, str]]]:
    """(text, slot -> (start, mention), [(start, literal text)]): `template` filled behind a prefix.

    Redrawn until the text has min_chars..max_chars characters and every mention occurs in it once
    (DuIE lines give mentions, not offsets: a reader must find each where it was put).
    """
    while True:
        text = rng.choice(PREFIX)
        slots: dict[str, tuple[int, str]] = {}
        literals: list[tuple[int, str]] = []
        for k, part in enumerate(template.replace("}", "{").split("{")):
            if k % 2 == 0:
                literals.append((len(text), part))
                text += part
            else:
                slots[part] = (len(text), slot_value(rng, part))
                text += slots[part][1]
        text += rng.choice(SUFFIX)
        if min_chars <= len(text) <= max_chars and all(text.count(m) == 1 for _, m in slots.values()):
            return text, slots, literals


def relation_sentence(rng: random.Random) -> dict:
    """One DuIE 2.0 line: {"text", "spo_list": [{subject, subject_type, predicate, object, object_type}]}."""
    template, triples = rng.choice(RELATION_TEMPLATES)
    text, slots, _ = filled(rng, template)
    spo_list = [{"subject": slots[s][1], "subject_type": RELATION_SCHEMA[p][0], "predicate": p,
                 "object": {"@value": slots[o][1]}, "object_type": {"@value": RELATION_SCHEMA[p][1]}}
                for s, p, o in triples]
    return {"text": text, "spo_list": spo_list}


def event_sentence(rng: random.Random, k: int) -> dict:
    """One DuEE 1.0 line: {"id", "text", "event_list": [{event_type, trigger, trigger_start_index, arguments}]}."""
    template, events = rng.choice(EVENT_TEMPLATES)
    text, slots, literals = filled(rng, template)
    event_list = []
    for event_type, trigger, roles in events:
        start = next(a + part.index(trigger) for a, part in literals if trigger in part)
        event_list.append({"event_type": event_type, "trigger": trigger, "trigger_start_index": start,
                           "arguments": [{"argument_start_index": slots[slot][0], "role": role,
                                          "argument": slots[slot][1]} for role, slot in roles]})
    return {"id": f"synthetic-{k}", "text": text, "event_list": event_list}


def relation_sentences(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [relation_sentence(rng) for _ in range(n)]


def event_sentences(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [event_sentence(rng, k) for k in range(n)]


def write_relation_schema(path: Path) -> Path:
    """RELATION_SCHEMA as a DuIE schema file: one {"predicate", "subject_type", "object_type": {"@value"}} per line."""
    rows = [{"predicate": p, "subject_type": s, "object_type": {"@value": o}} for p, (s, o) in RELATION_SCHEMA.items()]
    return write_jsonl(path, rows)


def write_event_schema(path: Path) -> Path:
    """EVENT_SCHEMA as a DuEE schema file: one {"event_type", "role_list": [{"role"}]} per line."""
    return write_jsonl(path, [{"event_type": t, "role_list": [{"role": r} for r in roles]}
                              for t, roles in EVENT_SCHEMA.items()])


def sentences(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]


def join(rows: Sequence[dict]) -> dict:
    """Rows joined with no separator into one document; every gold span's offsets shifted into it."""
    text, entities = "", []
    for row in rows:
        entities += [{**e, "start": e["start"] + len(text), "end": e["end"] + len(text)} for e in row["entities"]]
        text += row["text"]
    return {"text": text, "entities": entities}


def group_by_chars(items: Sequence[T], length: Callable[[T], int], chars: int) -> list[list[T]]:
    """Consecutive items cut into round(total / chars) groups of about equal characters (at least one group).

    Every item lands in exactly one group, in order.
    """
    total = sum(length(x) for x in items)
    n_groups = max(1, round(total / chars))
    groups: list[list[T]] = [[] for _ in range(n_groups)]
    seen = 0
    for item in items:
        groups[min(n_groups - 1, seen * n_groups // max(total, 1))].append(item)
        seen += length(item)
    return [g for g in groups if g]


def documents(rows: Sequence[dict], chars: int = 1500) -> list[dict]:
    """Consecutive rows joined into documents of about `chars` characters; each row is in exactly one."""
    return [join(g) for g in group_by_chars(rows, lambda r: len(r["text"]), chars)]


def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--dev", type=int, default=600)
    parser.add_argument("--doc-chars", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train, dev = sentences(args.train, args.seed), sentences(args.dev, args.seed + 1)
    docs = documents(dev, args.doc_chars)
    for name, rows in (("train", train), ("dev", dev), ("docs", docs)):
        write_jsonl(args.out / f"{name}.jsonl", rows)
    print(f"wrote {len(train)} train, {len(dev)} dev sentences and {len(docs)} documents to {args.out}")


if __name__ == "__main__":
    main()
