"""template_cache: moto parses each stack body once; stack memoizes the SAM parse and the
translation. What callers get must equal what the uncached code gives, and be theirs to
change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.cloudformation.models import Stack
from yaml.scanner import ScannerError

from localaws.cloudformation import stack as localstack
from localaws.cloudformation import template_cache

ROOT = Path(__file__).resolve().parents[2]
YAML_BODY = """
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "${AWS::StackName}-topic"
Outputs:
  Arn:
    Value: !Ref Topic
"""


@pytest.fixture
def installed() -> Iterator[None]:
    was = template_cache.installed()
    template_cache.install()
    yield
    if not was:
        template_cache.uninstall()


@pytest.fixture
def original() -> object:
    """moto's own parser, whether or not the cache is installed."""
    if template_cache.installed():
        return template_cache.PATCHES.original(Stack, "parse_template")
    return Stack.parse_template


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize("body", [YAML_BODY, json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})])
def test_a_cached_parse_equals_moto_s_own_and_is_a_fresh_copy(body: str, original: object) -> None:
    expected = original(body)  # type: ignore[operator]
    first = Stack.parse_template(body)
    assert first == expected
    first["Resources"].clear()
    again = Stack.parse_template(body)
    assert again == expected and again is not first


@pytest.mark.usefixtures("installed")
def test_a_body_that_does_not_parse_raises_every_time() -> None:
    for _ in range(2):
        with pytest.raises((ScannerError, ValueError)):
            Stack.parse_template("{ not: [ json")


def test_install_and_uninstall_are_idempotent_and_restore_moto_s_parser() -> None:
    was = template_cache.installed()
    native = template_cache.PATCHES.original(Stack, "parse_template") if was else Stack.parse_template
    template_cache.install()
    template_cache.install()
    assert template_cache.installed()
    template_cache.uninstall()
    template_cache.uninstall()
    assert not template_cache.installed()
    assert Stack.parse_template is native
    if was:
        template_cache.install()


def test_translate_results_are_the_callers_own() -> None:
    first = localstack.translate(ROOT / "template.yaml", stack_name="autoloop-cachetest")
    expected = json.dumps(first, sort_keys=True)
    first["Resources"].clear()
    again = localstack.translate(ROOT / "template.yaml", stack_name="autoloop-cachetest")
    assert json.dumps(again, sort_keys=True) == expected


def test_a_translation_is_reused_only_for_the_same_input(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    uncached = localstack._sam_translate_uncached

    def counted(sam: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
        calls.append(parameters)
        return uncached(sam, parameters)

    monkeypatch.setattr(localstack, "_sam_translate_uncached", counted)
    monkeypatch.setattr(localstack, "_translate_memo", template_cache.CopyMemo())
    for _ in range(2):
        localstack.translate(ROOT / "template.yaml", stack_name="autoloop-cachetest")
    assert len(calls) == 1
    localstack.translate(ROOT / "template.yaml", stack_name="autoloop-cachetest", parameters={"Environment": "prod"})
    localstack.translate(ROOT / "template.yaml", stack_name="autoloop-othername")  # other code URIs
    assert len(calls) == 3 and calls[1]["Environment"] == "prod"
