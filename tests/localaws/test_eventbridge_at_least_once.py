"""eventbridge.at_least_once: duplicated and reordered deliveries, seeded (server mode)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from localaws.events import delivery as eventbridge
from tests.localaws.test_eventbridge import put_event, put_rule, received, recorder

pytestmark = pytest.mark.usefixtures("local_aws")


@pytest.fixture(autouse=True)
def _off() -> Iterator[None]:
    yield
    eventbridge.at_least_once(None)


def ours(rule_arn: str) -> list[dict]:
    return [d for d in eventbridge.deliveries() if d["rule"] == rule_arn]


def test_every_event_delivered_twice_with_the_copy_after_a_later_event(make_function, uid, tmp_path):
    log = tmp_path / "events.jsonl"
    fn = make_function(recorder(log))
    source = uid("autoloop.test")
    rule = put_rule(uid("rule"), [{"Id": "fn", "Arn": fn["FunctionArn"]}], {"source": [source]})
    eventbridge.at_least_once(1.0, seed=7, max_hold_seconds=30)

    for n in range(4):
        put_event(source, {"n": n})
    assert eventbridge.drain(30)

    records = ours(rule)
    ids = [r["id"] for r in records]
    assert len(set(ids)) == 4 and all(ids.count(i) == 2 for i in set(ids))  # each twice, with the same id
    first = {}
    for position, record in enumerate(records):
        first.setdefault(record["id"], position)
    order = sorted(first, key=first.get)
    copy_of_first = next(p for p, r in enumerate(records) if r["id"] == order[0] and r["duplicate"])
    assert copy_of_first > first[order[1]]  # the copy came after a later event
    assert sorted(e["detail"]["n"] for e in received(log)) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert eventbridge.held_stats() == {"duplicated": 4, "delayed": 0, "released": 4, "held": 0}


def test_delayed_events_arrive_after_later_ones(make_function, uid, tmp_path):
    fn = make_function(recorder(tmp_path / "events.jsonl"))
    late, prompt = uid("autoloop.late"), uid("autoloop.prompt")
    rule = put_rule(uid("rule"), [{"Id": "fn", "Arn": fn["FunctionArn"]}], {"source": [late, prompt]})
    eventbridge.at_least_once(0.0, delay=1.0, seed=1, max_later=1, max_hold_seconds=30,
                              match=lambda event: event.get("source") == late)
    put_event(late, {"which": "first sent"})
    put_event(prompt, {"which": "second sent"})
    assert eventbridge.drain(30)
    records = ours(rule)
    assert len(records) == 2 and not any(r["duplicate"] for r in records)  # delayed, not copied
    assert eventbridge.held_stats()["delayed"] == 1
    sent_second = records[0]
    assert sent_second["id"] != records[1]["id"]
    events = received(tmp_path / "events.jsonl")
    assert {e["detail"]["which"] for e in events} == {"first sent", "second sent"}
    assert [e["id"] for e in events if e["detail"]["which"] == "second sent"] == [sent_second["id"]]


def test_a_held_copy_goes_out_by_itself_when_no_later_event_comes(make_function, uid, tmp_path):
    fn = make_function(recorder(tmp_path / "events.jsonl"))
    source = uid("autoloop.test")
    rule = put_rule(uid("rule"), [{"Id": "fn", "Arn": fn["FunctionArn"]}], {"source": [source]})
    eventbridge.at_least_once(1.0, seed=3, max_hold_seconds=0.2)
    put_event(source, {"alone": True})
    deadline = time.monotonic() + 15
    while len(ours(rule)) < 2 and time.monotonic() < deadline:  # no drain: that would release it
        time.sleep(0.02)
    assert [r["duplicate"] for r in ours(rule)] == [False, True]


def test_the_same_seed_makes_the_same_choices(make_function, uid, tmp_path):
    fn = make_function(recorder(tmp_path / "events.jsonl"))
    source = uid("autoloop.test")
    rule = put_rule(uid("rule"), [{"Id": "fn", "Arn": fn["FunctionArn"]}], {"source": [source]})

    def run(seed: int) -> list[bool]:
        eventbridge.reset()
        eventbridge.at_least_once(0.5, seed=seed, max_hold_seconds=30)
        for n in range(12):
            put_event(source, {"n": n})
        assert eventbridge.drain(30)
        copied = {r["id"] for r in ours(rule) if r["duplicate"]}
        firsts = [r["id"] for r in ours(rule) if not r["duplicate"]]
        return [i in copied for i in firsts]

    first, again = run(42), run(42)
    assert first == again and 0 < sum(first) < 12


def test_shares_outside_zero_to_one_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="duplicate=1.5 is a share; give a number from 0 to 1"):
        eventbridge.at_least_once(1.5)
    with pytest.raises(ValueError, match="max_later must be at least 1"):
        eventbridge.at_least_once(0.5, max_later=0)
    assert eventbridge.at_least_once(0.0) is None  # nothing to do: off
