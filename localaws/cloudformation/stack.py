"""Boot ``template.yaml`` into moto: SAM translation plus moto's CloudFormation, with adapters.

Local mode runs the real template, not a hand-written copy of it. Neither tool does that
alone; this module fills the gaps between them:

- samtranslator turns SAM into plain CloudFormation offline, but it rejects local
  ``CodeUri``/``ContentUri``/``DefinitionUri`` paths ("not a valid S3 Uri"). The folders
  are zipped (deterministically) and uploaded to a deploy bucket in moto, like
  ``sam package`` does, and the template points at the S3 objects.
- moto's CloudFormation turns a state machine's ``DefinitionS3Location`` into an empty
  definition and ignores ``DefinitionSubstitutions``; an ``Fn::Sub`` would resolve the
  values but turns ``$$.Task.Token`` into ``$.Task.Token``. The ASL file is inlined as a
  ``DefinitionString`` built with ``Fn::Join`` (text split at each ``${Name}``), which moto
  resolves without touching the rest of the text.
- moto has no CloudFormation model for some types (``localaws.cloudformation.types`` adds them) and
  ignores some properties of the types it has; those are applied after creation with the
  service APIs, from what the template says (``_FIXUPS``).
- moto ignores ``AllowedValues``/``AllowedPattern``/``MinValue``... of parameters and the
  template's ``Rules``; they are checked here, as CloudFormation would (the rule functions
  ``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Fn::Contains``, ``Fn::EachMemberEquals``,
  ``Fn::EachMemberIn`` over ``Ref`` of parameters and pseudo parameters). A template
  parameter named ``StackName`` that the caller does not set gets the stack's name, as
  ``samconfig.toml``'s ``parameter_overrides`` set it for ``sam deploy``.
- moto's custom resources (``Custom::*``, ``AWS::CloudFormation::CustomResource``) get only a
  Create, answered to a URL nothing in-process reaches; ``localaws.cloudformation.types.CustomResource``
  runs the provider function in this process for Create, Update and Delete, and
  ``DeleteStack`` sends the Deletes first (the template's ``Teardown`` relies on it).
- moto creates nothing for a type it does not know, silently; the deployed resources are
  compared with the translated template and a missing one is an error.

Every AWS call goes through :func:`localaws.clients.client`, so this works in-process under
``moto.mock_aws`` and against a moto server (``AWS_ENDPOINT_URL``) running in this process
(the models of ``localaws.cloudformation.types`` live in the process that runs moto).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from localaws.clients import client, region
from localaws.cloudformation import template_cache
from localaws.cloudformation import types as cfn_types

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STACK_NAME = "autoloop-local"
# moto has no real account; every backend uses this one unless MOTO_ACCOUNT_ID is set.
_FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


class DeployError(RuntimeError):
    """The template could not be translated or deployed into the local AWS."""


@dataclass(frozen=True)
class Stack:
    """A deployed stack. ``resources`` maps logical id to physical id (name, ARN or URL
    as CloudFormation's ``Ref`` gives it); ``template`` is the CloudFormation that was
    deployed (after translation and the local adapters)."""

    name: str
    stack_id: str
    outputs: dict[str, str]
    resources: dict[str, str]
    resource_types: dict[str, str]
    parameters: dict[str, str]
    template: dict[str, Any] = field(repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)


@dataclass
class _Artifact:
    key: str
    body: bytes


@dataclass
class _Build:
    template: dict[str, Any]
    bucket: str
    artifacts: list[_Artifact]


# =========================================================================== paths
def _locate(template_path: str | os.PathLike[str], project_root: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """(template file, folder that local paths in the template are relative to)."""
    path = Path(template_path)
    if project_root is not None:
        root = Path(project_root).resolve()
        path = path if path.is_absolute() else root / path
        return path, root
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path  # deploy() from any working directory finds the repo's
    path = path.resolve()
    return path, path.parent


def deploy_bucket_name(stack_name: str) -> str:
    """The bucket that holds the packaged code of ``stack_name`` (``sam package``'s role)."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"autoloop-local-deploy-{stack_name}".lower())
    return name[:63].strip("-")


# =========================================================================== packaging
def _zip_folder(folder: Path, prefix: str = "") -> bytes:
    """A zip of ``folder`` that depends only on file names and contents (sorted entries,
    fixed timestamps and permissions), so an unchanged folder gives the same S3 key."""
    if not folder.is_dir():
        raise DeployError(f"{folder} is not a folder")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _walk(folder):
            info = zipfile.ZipInfo(prefix + path.relative_to(folder).as_posix(), _ZIP_EPOCH)
            info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _walk(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.is_dir():
            if entry.name in _SKIP_DIRS or entry.name.endswith(".egg-info"):
                continue
            yield from _walk(entry)
        elif entry.is_file() and not entry.name.endswith(_SKIP_SUFFIXES):
            yield entry


def _is_local(uri: Any) -> bool:
    return isinstance(uri, str) and not uri.startswith("s3://")


def _package(sam: dict[str, Any], root: Path, bucket: str) -> tuple[list[_Artifact], dict[str, str]]:
    """Zip local code folders into ``bucket`` keys and point the SAM resources at them
    (samtranslator rejects local ``CodeUri``/``ContentUri``/``DefinitionUri``: "not a
    valid S3 Uri"; ``sam package`` would upload them the same way).

    Returns the artifacts to upload and, per state machine with a local ``DefinitionUri``,
    its ASL text (inlined after translation, see :func:`_inline_definitions`).
    """
    artifacts: dict[str, _Artifact] = {}
    definitions: dict[str, str] = {}
    globals_code = sam.get("Globals", {}).get("Function", {}).get("CodeUri")

    def upload(logical_id: str, folder: Path, prefix: str = "") -> str:
        if not folder.is_dir():
            raise DeployError(f"{logical_id}: code folder {folder} does not exist")
        body = _zip_folder(folder, prefix)
        key = f"{logical_id}/{hashlib.sha256(body).hexdigest()[:16]}.zip"
        artifacts[key] = _Artifact(key, body)
        return f"s3://{bucket}/{key}"

    for logical_id, resource in sam.get("Resources", {}).items():
        kind = resource.get("Type")
        props = resource.setdefault("Properties", {})
        if kind == "AWS::Serverless::Function":
            if props.get("InlineCode") is not None or props.get("PackageType") == "Image":
                continue
            uri = props.get("CodeUri", globals_code)
            if _is_local(uri):
                props["CodeUri"] = upload(logical_id, root / uri)
        elif kind == "AWS::Serverless::LayerVersion":
            uri = props.get("ContentUri")
            if _is_local(uri):
                # `sam build` puts a python layer's content under python/ (on sys.path at
                # /opt/python); dependencies are not installed here, they are in the venv.
                method = str(resource.get("Metadata", {}).get("BuildMethod", ""))
                prefix = "python/" if method.startswith("python") else ""
                props["ContentUri"] = upload(logical_id, root / uri, prefix)
        elif kind == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if _is_local(uri):
                if not (root / uri).is_file():
                    raise DeployError(f"{logical_id}: DefinitionUri {root / uri} does not exist")
                definitions[logical_id] = (root / uri).read_text(encoding="utf-8")
                # A placeholder the translator accepts; replaced after translation.
                props["DefinitionUri"] = f"s3://{bucket}/{logical_id}/{Path(uri).name}"
    if _is_local(globals_code):
        del sam["Globals"]["Function"]["CodeUri"]
    return list(artifacts.values()), definitions


def _inline_definitions(cfn: dict[str, Any], definitions: dict[str, str]) -> None:
    """Replace ``DefinitionS3Location`` + ``DefinitionSubstitutions`` with a
    ``DefinitionString`` = ``Fn::Join("", [text, value, text, ...])``.

    moto's CloudFormation reads neither ``DefinitionS3Location`` (empty definition) nor
    ``DefinitionSubstitutions`` (placeholders stay), and ``Fn::Sub`` would also rewrite
    ``$$.Task.Token``. In ``Fn::Join`` the ASL text is never parsed, only the values are.
    """
    for logical_id, text in definitions.items():
        props = cfn["Resources"][logical_id]["Properties"]
        props.pop("DefinitionS3Location", None)
        substitutions = props.pop("DefinitionSubstitutions", None) or {}
        parts: list[Any] = []
        literal: list[str] = []
        position = 0
        unknown: set[str] = set()
        for match in _PLACEHOLDER.finditer(text):
            name = match.group(1)
            if name not in substitutions:
                unknown.add(name)
                continue
            literal.append(text[position : match.start()])
            position = match.end()
            value = substitutions[name]
            if isinstance(value, bool):
                literal.append("true" if value else "false")
            elif isinstance(value, str | int | float):
                literal.append(str(value))
            else:  # an intrinsic function: moto resolves it inside the Fn::Join
                parts.append("".join(literal))
                literal = []
                parts.append(value)
        literal.append(text[position:])
        parts.append("".join(literal))
        if unknown:
            logger.warning(
                "%s: no DefinitionSubstitutions for %s; left as is",
                logical_id,
                ", ".join(f"${{{n}}}" for n in sorted(unknown)),
            )
        unused = set(substitutions) - set(_PLACEHOLDER.findall(text))
        if unused:
            logger.debug("%s: substitutions not used by the ASL: %s", logical_id, sorted(unused))
        props["DefinitionString"] = parts[0] if len(parts) == 1 else {"Fn::Join": ["", [p for p in parts if p != ""]]}


def _stringify(value: Any) -> Any:
    """Make a value that CloudFormation would pass as a string a string for moto too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        if value == {"Ref": "AWS::NoValue"}:
            return value
        if set(value) == {"Fn::If"}:
            condition, yes, no = value["Fn::If"]
            return {"Fn::If": [condition, _stringify(yes), _stringify(no)]}
        # moto's Fn::Join str()s each item: "3600", "0.75" instead of 3600, 0.75.
        return {"Fn::Join": ["", [value]]}
    return value


def _string_environment(cfn: dict[str, Any]) -> None:
    """Lambda environment values are strings. moto converts ``Number`` parameters to
    int/float and a ``Ref`` to one lands in the environment as a number (os.environ and
    handlers then get 3600 instead of "3600"); each intrinsic value is wrapped in a
    ``Fn::Join`` (still resolved by moto) so it arrives as a string, as on AWS."""
    for resource in cfn["Resources"].values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        variables = (resource.get("Properties") or {}).get("Environment", {}).get("Variables")
        if isinstance(variables, dict):
            for name, value in variables.items():
                variables[name] = _stringify(value)


# =========================================================================== translation
class _NoManagedPolicies:
    """samtranslator's managed-policy loader, offline. The translator ships its own list
    of AWS managed policies (samtranslator/internal/data/aws_managed_policies.json) and
    only asks the loader for names it does not know; this template uses none."""

    def load(self) -> dict[str, str]:
        return {}


# Pure per input, and the same template is booted again and again (every handler test):
# the parsed SAM document per template text, the translation per (packaged SAM, parameter
# values, region). Callers change what they get, so each gets a copy.
_yaml_memo = template_cache.CopyMemo()
_translate_memo = template_cache.CopyMemo()


def _sam_translate(sam: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    key = hashlib.sha256(pickle.dumps((sam, sorted(parameters.items()), region()))).digest()
    result: dict[str, Any] = _translate_memo.get(key, lambda: _sam_translate_uncached(sam, parameters))
    return result


def _sam_translate_uncached(sam: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    import boto3
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    # The translator reads the region (pseudo parameters, ARN partitions) from a boto3
    # session; a session with a fixed region and fake credentials keeps it offline.
    session = boto3.session.Session(
        aws_access_key_id=_FAKE_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=_FAKE_CREDENTIALS["aws_secret_access_key"],
        region_name=region(),
    )
    values = dict(parameters)
    to_py27_compatible_template(sam, values)
    # Metrics are recorded in memory; publishing them to the dummy publisher keeps the
    # translator from warning "There are unpublished metrics" when it is collected.
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(None, Parser(), boto_session=session, metrics=metrics)
    loader = _NoManagedPolicies()
    try:
        cfn = translator.translate(sam, parameter_values=values, get_managed_policy_map=loader.load)
    except Exception as error:  # InvalidDocumentException carries the useful messages
        causes = getattr(error, "causes", None)
        detail = "; ".join(str(getattr(c, "message", c)) for c in causes) if causes else ""
        raise DeployError(f"SAM translation failed: {error} {detail}".strip()) from error
    finally:
        metrics.publish()
    result: dict[str, Any] = undo_mark_unicode_str_in_template(cfn)
    return result


def _load_yaml(path: Path) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse  # understands !Ref, !Sub, !GetAtt...

    if not path.is_file():
        raise DeployError(f"template not found: {path}")
    text = path.read_text(encoding="utf-8")
    document = _yaml_memo.get(text, lambda: yaml_parse(text))
    if not isinstance(document, dict):
        raise DeployError(f"{path} is not a template")
    return document


def _build(
    template_path: str | os.PathLike[str],
    stack_name: str,
    parameters: dict[str, str] | None,
    project_root: str | os.PathLike[str] | None,
) -> _Build:
    path, root = _locate(template_path, project_root)
    sam = _load_yaml(path)
    bucket = deploy_bucket_name(stack_name)
    artifacts, definitions = _package(sam, root, bucket)
    cfn = _sam_translate(sam, _check_parameters(sam, parameters, stack_name))
    _inline_definitions(cfn, definitions)
    _string_environment(cfn)
    return _Build(cfn, bucket, artifacts)


def translate(
    template_path: str | os.PathLike[str] = "template.yaml",
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: dict[str, str] | None = None,
    project_root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The plain CloudFormation that :func:`deploy` creates, without touching any AWS.

    Code folders are zipped (to compute their S3 keys) but not uploaded. Intrinsic
    functions are left for CloudFormation (moto) to resolve.
    """
    return _build(template_path, stack_name, parameters, project_root).template


# =========================================================================== parameters
def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_as_string(v) for v in value)
    return str(value)


STACK_NAME_PARAMETER = "StackName"


def _check_parameters(template: dict[str, Any], overrides: dict[str, str] | None,
                      stack_name: str = DEFAULT_STACK_NAME) -> dict[str, str]:
    """Every parameter's value as a string (defaults filled in), validated like
    CloudFormation does and moto does not (AllowedValues, AllowedPattern, Min/Max, Rules)."""
    declared: dict[str, dict[str, Any]] = template.get("Parameters") or {}
    overrides = {k: _as_string(v) for k, v in (overrides or {}).items()}
    if STACK_NAME_PARAMETER in declared:
        overrides.setdefault(STACK_NAME_PARAMETER, stack_name)
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DeployError(f"parameters not in the template: {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = overrides[name]
        elif "Default" in spec:
            value = _as_string(spec["Default"])
        else:
            raise DeployError(f"parameter {name} has no default and no value")
        problem = _parameter_problem(spec, value)
        if problem:
            constraint = " ".join(str(spec.get("ConstraintDescription", "")).split())
            raise DeployError(f"parameter {name}={value!r}: {problem}" + (f" ({constraint})" if constraint else ""))
        values[name] = value
    _check_rules(template, values, stack_name)
    return values


def _rule_value(node: Any, values: dict[str, str], stack_name: str) -> Any:
    """A rule function's argument: a literal, a list, or ``Ref`` of a parameter or pseudo parameter."""
    if isinstance(node, dict) and set(node) == {"Ref"}:
        pseudo = {"AWS::StackName": stack_name, "AWS::Region": region(), "AWS::Partition": "aws",
                  "AWS::AccountId": os.environ.get("MOTO_ACCOUNT_ID", "123456789012")}
        name = str(node["Ref"])
        if name in values:
            return values[name]
        if name in pseudo:
            return pseudo[name]
        raise DeployError(f"a rule refers to {name!r}, which is neither a parameter nor a pseudo parameter")
    if isinstance(node, list):
        return [_rule_value(item, values, stack_name) for item in node]
    if isinstance(node, dict):
        return _rule_true(node, values, stack_name)
    return _as_string(node)


def _rule_true(node: Any, values: dict[str, str], stack_name: str) -> bool:
    """Evaluate one rule function (CloudFormation's "rule functions")."""
    if not isinstance(node, dict) or len(node) != 1:
        raise DeployError(f"not a rule function: {node!r}")
    [(function, raw)] = node.items()
    args = raw if isinstance(raw, list) else [raw]
    if function in {"Fn::And", "Fn::Or"}:
        results = [_rule_true(a, values, stack_name) for a in args]
        return all(results) if function == "Fn::And" else any(results)
    if function == "Fn::Not":
        return not _rule_true(args[0], values, stack_name)
    left, right = (_rule_value(a, values, stack_name) for a in args)
    if function == "Fn::Equals":
        return bool(left == right)
    if function == "Fn::Contains":
        return right in left
    if function == "Fn::EachMemberEquals":
        return all(item == right for item in left)
    if function == "Fn::EachMemberIn":
        return all(item in right for item in left)
    raise DeployError(f"rule function {function} is not supported by the local AWS")


def _check_rules(template: dict[str, Any], values: dict[str, str], stack_name: str) -> None:
    """The template's ``Rules``: a rule whose ``RuleCondition`` holds must have every assertion
    true, else the stack is refused before anything is created (with the assertion's text)."""
    for name, rule in (template.get("Rules") or {}).items():
        condition = rule.get("RuleCondition")
        if condition is not None and not _rule_true(condition, values, stack_name):
            continue
        for assertion in rule.get("Assertions") or []:
            if not _rule_true(assertion["Assert"], values, stack_name):
                description = " ".join(str(assertion.get("AssertDescription", "")).split())
                raise DeployError(f"rule {name} refuses the stack {stack_name!r}: {description}".rstrip(": "))


def _parameter_problem(spec: dict[str, Any], value: str) -> str | None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_as_string(a) for a in allowed]:
        return f"not one of {[_as_string(a) for a in allowed]}"
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), value):
        return f"does not match {pattern}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"shorter than {spec['MinLength']}"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"longer than {spec['MaxLength']}"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "not a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"below {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"above {spec['MaxValue']}"
    return None


# =========================================================================== deploy
class _Clients:
    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = client(service)
        return self._cache[service]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _upload(clients: _Clients, build: _Build) -> None:
    s3 = clients("s3")
    try:
        if region() == "us-east-1":
            s3.create_bucket(Bucket=build.bucket)
        else:
            s3.create_bucket(
                Bucket=build.bucket,
                CreateBucketConfiguration={"LocationConstraint": region()},
            )
    except ClientError as error:
        if _error_code(error) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    # Keys are content hashes: an existing key already holds these bytes.
    existing = {
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=build.bucket)
        for item in page.get("Contents", [])
    }
    for artifact in build.artifacts:
        if artifact.key not in existing:
            s3.put_object(Bucket=build.bucket, Key=artifact.key, Body=artifact.body)


def _stack_status(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error) or _error_code(error) == "ValidationError":
            return None
        raise
    return stacks[0] if stacks else None


_COMPLETE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}


def _create_or_update(
    clients: _Clients, stack_name: str, body: str, parameters: dict[str, str], timeout: float
) -> tuple[str, str]:
    """(action, stack id). Creates the stack, or updates it when it exists; a stack left
    half-created (moto stops at the first failing resource) is deleted first."""
    cfn = clients("cloudformation")
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    existing = _stack_status(cfn, stack_name)
    if existing is not None and existing["StackStatus"] not in _COMPLETE:
        logger.info("deleting stack %s left in %s", stack_name, existing["StackStatus"])
        cfn.delete_stack(StackName=stack_name)
        existing = None
    action = "create" if existing is None else "update"
    if existing is not None and _same_stack(cfn, existing, body, parameters):
        return "unchanged", existing["StackId"]
    try:
        if existing is None:
            stack_id = cfn.create_stack(StackName=stack_name, TemplateBody=body, Parameters=params)["StackId"]
        else:
            stack_id = existing["StackId"]
            cfn.update_stack(StackName=stack_name, TemplateBody=body, Parameters=params)
    except Exception as error:  # in-process, moto's own exceptions surface as they are
        if existing is not None and "No updates are to be performed" in str(error):
            return "unchanged", existing["StackId"]
        reason = str(error) if isinstance(error, ClientError) else f"{type(error).__name__}: {error}"
        message = _failure(clients, stack_name, f"{action}_stack: {reason}")
        if action == "create":
            _rollback(clients, stack_name)
        raise DeployError(message) from error

    deadline = time.monotonic() + timeout
    while True:
        status = _stack_status(cfn, stack_name)
        state = status["StackStatus"] if status else "MISSING"
        if state in _COMPLETE:
            return action, stack_id
        if not state.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            message = _failure(clients, stack_name, f"stack is {state} after {timeout:g}s")
            if action == "create":
                _rollback(clients, stack_name)
            raise DeployError(message)
        time.sleep(0.05)


def _same_stack(cfn: Any, existing: dict[str, Any], body: str, parameters: dict[str, str]) -> bool:
    """Whether the stack already has this template and these parameters. moto's own
    check ("No updates are to be performed") compares its resolved (typed) parameters
    with the incoming strings, so an identical deploy would otherwise run an update."""
    deployed = {p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in existing.get("Parameters") or []}
    if deployed != parameters:
        return False
    template = cfn.get_template(StackName=existing["StackId"])["TemplateBody"]
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError:
            return False
    return bool(template == json.loads(body))


def _failure(clients: _Clients, stack_name: str, reason: str) -> str:
    """A message naming what failed: the stack's failure events, else the reason."""
    lines = [f"deploying stack {stack_name} failed: {reason}"]
    try:
        events = clients("cloudformation").describe_stack_events(StackName=stack_name)
        for event in events.get("StackEvents", []):
            if event.get("ResourceStatus", "").endswith("FAILED"):
                lines.append(
                    f"  {event.get('LogicalResourceId')} ({event.get('ResourceType')}): "
                    f"{event.get('ResourceStatus')} {event.get('ResourceStatusReason', '')}"
                )
    except Exception:  # the stack may not exist at all
        pass
    return "\n".join(lines)


def _list_resources(clients: _Clients, stack_name: str) -> dict[str, tuple[str, str]]:
    """logical id -> (physical id, type). moto lists a resource it could not create
    (unknown type, false condition) with an empty logical id; those are dropped."""
    cfn = clients("cloudformation")
    found: dict[str, tuple[str, str]] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            logical = summary.get("LogicalResourceId")
            if logical:
                found[logical] = (summary.get("PhysicalResourceId", ""), summary["ResourceType"])
    return found


def _check_types(template: dict[str, Any], parameters: dict[str, str], stack_name: str) -> None:
    """Fail before create_stack on a type moto cannot create: moto would skip it with a
    warning, drop every Ref to it, and crash or hang on a GetAtt of it."""
    conditions = _Resolver(
        template, stack_name=stack_name, stack_id="", parameters=parameters, physical={}, clients=_Clients()
    )
    unknown = sorted(
        f"  {logical} ({resource['Type']})"
        for logical, resource in template["Resources"].items()
        if not cfn_types.is_supported(resource["Type"]) and conditions.condition_holds(resource.get("Condition"))
    )
    if unknown:
        raise DeployError(
            "moto's CloudFormation has no model for these resources (add one to "
            "localaws/cloudformation/types.py):\n" + "\n".join(unknown)
        )


def _rollback(clients: _Clients, stack_name: str) -> None:
    """CloudFormation rolls a failed creation back; moto leaves the stack half-made."""
    try:
        clients("cloudformation").delete_stack(StackName=stack_name)
    except Exception as error:
        logger.warning("could not delete the failed stack %s: %s", stack_name, error)


def _install_s3_policy_adapter() -> None:
    """moto enforces a bucket policy's Deny on every object request and cannot evaluate
    its ``aws:SecureTransport`` condition, so the template's TLS-only policy (created by
    ``cfn_types.BucketPolicy``) would deny everything; ``localaws.s3.policy`` evaluates it
    as for a TLS request. Installed here so that a deployed stack is always usable."""
    from localaws.s3 import policy as s3_policy

    s3_policy.install()


def deploy(
    template_path: str | os.PathLike[str] = "template.yaml",
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: dict[str, str] | None = None,
    project_root: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 30.0,
) -> Stack:
    """Translate ``template_path`` and create (or update) it as ``stack_name`` in moto.

    ``parameters`` override the template's defaults (validated as CloudFormation would).
    Local paths in the template are relative to ``project_root`` (default: the template's
    folder). Deploying again updates the stack in place (nothing changes if nothing
    changed). Raises :class:`DeployError` naming what failed.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    cfn_types.register()  # first call imports moto's CloudFormation (about 1 s, once)
    _install_s3_policy_adapter()
    template_cache.install()  # moto parses each template body once, not on every boot
    timings["register"] = time.perf_counter() - started
    mark = time.perf_counter()
    build = _build(template_path, stack_name, parameters, project_root)
    values = _check_parameters(build.template, parameters, stack_name)
    timings["translate"] = time.perf_counter() - mark

    _check_types(build.template, values, stack_name)

    mark = time.perf_counter()
    clients = _Clients()
    _upload(clients, build)
    timings["upload"] = time.perf_counter() - mark

    mark = time.perf_counter()
    body = json.dumps(build.template)
    action, stack_id = _create_or_update(clients, stack_name, body, values, timeout)
    timings["create_stack"] = time.perf_counter() - mark

    mark = time.perf_counter()
    listed = _list_resources(clients, stack_name)
    if not stack_id:
        stack_id = (_stack_status(clients("cloudformation"), stack_name) or {}).get("StackId", "")
    resolver = _Resolver(
        build.template,
        stack_name=stack_name,
        stack_id=stack_id,
        parameters=values,
        physical={k: v[0] for k, v in listed.items()},
        clients=clients,
    )
    missing = {
        logical: resource["Type"]
        for logical, resource in build.template["Resources"].items()
        if logical not in listed and resolver.condition_holds(resource.get("Condition"))
    }
    if missing:
        if action == "create":
            _rollback(clients, stack_name)
        detail = "\n".join(
            f"  {logical} ({kind})"
            + (
                ""
                if cfn_types.is_supported(kind)
                else ": moto has no CloudFormation model for this type; add one to localaws/cloudformation/types.py"
            )
            for logical, kind in sorted(missing.items())
        )
        hint = (
            "\n(moto's model of a type may lack update support: add an in-place update to "
            "localaws/cloudformation/types.py, or deploy under a new stack name)"
            if action == "update"
            else ""
        )
        raise DeployError(f"stack {stack_name}: resources missing after {action}:\n{detail}{hint}")
    _apply_fixups(build.template, resolver, clients)
    timings["fixups"] = time.perf_counter() - mark

    described = _stack_status(clients("cloudformation"), stack_name) or {}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []}
    timings["total"] = time.perf_counter() - started
    logger.info(
        "%s stack %s: %d resources in %.2fs (translate %.2fs, create_stack %.2fs)",
        action,
        stack_name,
        len(listed),
        timings["total"],
        timings["translate"],
        timings["create_stack"],
    )
    return Stack(
        name=stack_name,
        stack_id=stack_id,
        outputs=outputs,
        resources={k: v[0] for k, v in listed.items()},
        resource_types={k: v[1] for k, v in listed.items()},
        parameters=values,
        template=build.template,
        timings=timings,
    )


# =========================================================================== resolver
class _Unresolvable(Exception):
    pass


_NO_VALUE = object()


class _Resolver:
    """Evaluates the template's intrinsic functions against the deployed stack, for the
    post-creation fixups (moto's own resolver lives in moto's process and is private).
    Supports Ref, Fn::GetAtt for the attributes fixups need, Fn::Sub, Fn::Join, Fn::If,
    Fn::Select, Fn::Split and conditions."""

    def __init__(
        self,
        template: dict[str, Any],
        *,
        stack_name: str,
        stack_id: str,
        parameters: dict[str, str],
        physical: dict[str, str],
        clients: _Clients,
    ) -> None:
        self.template = template
        self.physical = physical
        self.clients = clients
        arn = stack_id.split(":")
        partition = arn[1] if len(arn) > 5 else "aws"
        account = arn[4] if len(arn) > 5 else os.environ.get("MOTO_ACCOUNT_ID", "123456789012")
        self.partition = partition
        self.names: dict[str, Any] = {
            **parameters,
            "AWS::StackName": stack_name,
            "AWS::StackId": stack_id,
            "AWS::Region": region(),
            "AWS::AccountId": account,
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}
        self.aws_policies_loaded: bool | None = None

    def condition_holds(self, name: str | None) -> bool:
        if name is None:
            return True
        if name not in self._conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise DeployError(f"unknown condition {name}")
            self._conditions[name] = self._evaluate(spec)
        return self._conditions[name]

    def _evaluate(self, spec: Any) -> bool:
        if isinstance(spec, bool):
            return spec
        if isinstance(spec, dict) and len(spec) == 1:
            ((fn, args),) = spec.items()
            if fn == "Condition":
                return self.condition_holds(args)
            if fn == "Fn::Equals":
                left, right = (_as_string(self.resolve(a)) for a in args)
                return left == right
            if fn == "Fn::Not":
                return not self._evaluate(args[0])
            if fn == "Fn::And":
                return all(self._evaluate(a) for a in args)
            if fn == "Fn::Or":
                return any(self._evaluate(a) for a in args)
        raise _Unresolvable(f"condition {spec}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, args),) = value.items()
            if fn == "Ref":
                return self._ref(args)
            if fn == "Fn::GetAtt":
                logical, attribute = args if isinstance(args, list) else args.split(".", 1)
                return self._get_att(logical, attribute)
            if fn == "Fn::Sub":
                return self._sub(args)
            if fn == "Fn::Join":
                return str(args[0]).join(_as_string(v) for v in self.resolve(args[1]))
            if fn == "Fn::If":
                name, yes, no = args
                return self.resolve(yes if self.condition_holds(name) else no)
            if fn == "Fn::Select":
                return self.resolve(args[1])[int(self.resolve(args[0]))]
            if fn == "Fn::Split":
                return str(self.resolve(args[1])).split(args[0])
            if fn.startswith("Fn::"):
                raise _Unresolvable(fn)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name in self.names:
            return self.names[name]
        if name in self.physical:
            return self.physical[name]
        raise _Unresolvable(f"Ref {name}")

    def _sub(self, args: Any) -> str:
        text, local = (args, {}) if isinstance(args, str) else (args[0], args[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return _as_string(self.resolve(local[name]))
            if name in self.names or name in self.physical:
                return _as_string(self._ref(name))
            if "." in name:
                logical, attribute = name.split(".", 1)
                return _as_string(self._get_att(logical, attribute))
            raise _Unresolvable(f"${{{name}}}")

        return _PLACEHOLDER.sub(replace, text)

    def _get_att(self, logical: str, attribute: str) -> Any:
        resource = self.template["Resources"].get(logical)
        if resource is None or logical not in self.physical:
            raise _Unresolvable(f"GetAtt {logical}.{attribute}")
        pid = self.physical[logical]
        getter = _GET_ATT.get((resource["Type"], attribute))
        if getter is None:
            raise _Unresolvable(f"GetAtt {logical}.{attribute} ({resource['Type']})")
        return getter(self, pid)


def _log_group_arn(resolver: _Resolver, name: str) -> str:
    logs = resolver.clients("logs")
    for group in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", []):
        if group["logGroupName"] == name:
            return str(group["arn"])
    raise _Unresolvable(f"log group {name}")


_GET_ATT: dict[tuple[str, str], Callable[[_Resolver, str], Any]] = {
    ("AWS::S3::Bucket", "Arn"): lambda r, pid: f"arn:{r.partition}:s3:::{pid}",
    ("AWS::Logs::LogGroup", "Arn"): _log_group_arn,
    ("AWS::IAM::Role", "Arn"): lambda r, pid: r.clients("iam").get_role(RoleName=pid)["Role"]["Arn"],
    ("AWS::Lambda::Function", "Arn"): lambda r, pid: r.clients("lambda").get_function_configuration(FunctionName=pid)[
        "FunctionArn"
    ],
    ("AWS::DynamoDB::Table", "Arn"): lambda r, pid: r.clients("dynamodb").describe_table(TableName=pid)["Table"][
        "TableArn"
    ],
    ("AWS::SNS::Topic", "TopicArn"): lambda r, pid: pid,
    ("AWS::SNS::Topic", "TopicName"): lambda r, pid: pid.rsplit(":", 1)[-1],
    ("AWS::StepFunctions::StateMachine", "Arn"): lambda r, pid: pid,
    ("AWS::StepFunctions::StateMachine", "Name"): lambda r, pid: pid.rsplit(":", 1)[-1],
    ("AWS::Events::Rule", "Arn"): lambda r, pid: r.clients("events").describe_rule(Name=pid)["Arn"],
    ("AWS::Lambda::LayerVersion", "LayerVersionArn"): lambda r, pid: pid,
    ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupArn"): lambda r, pid: pid,
    ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupName"): lambda r, pid: pid.rsplit("/", 1)[-1],
}


# =========================================================================== fixups
# Properties moto's CloudFormation models ignore, applied after creation with the
# service's API, from the template's values. Keyed by resource type, then property.
_Fixup = Callable[[_Resolver, str, dict[str, Any]], None]


def _s3_versioning(r: _Resolver, bucket: str, props: dict[str, Any]) -> None:
    # moto: FakeBucket.create_from_cloudformation_json applies only BucketEncryption and Tags.
    status = props["VersioningConfiguration"].get("Status", "Suspended")
    r.clients("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def _s3_public_access_block(r: _Resolver, bucket: str, props: dict[str, Any]) -> None:
    # moto: ignored by FakeBucket.create_from_cloudformation_json.
    config = {k: _truthy(v) for k, v in props["PublicAccessBlockConfiguration"].items()}
    r.clients("s3").put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)


def _s3_ownership_controls(r: _Resolver, bucket: str, props: dict[str, Any]) -> None:
    # moto: ignored by FakeBucket.create_from_cloudformation_json.
    rules = [{"ObjectOwnership": rule["ObjectOwnership"]} for rule in props["OwnershipControls"].get("Rules", [])]
    r.clients("s3").put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": rules})


def _s3_notifications(r: _Resolver, bucket: str, props: dict[str, Any]) -> None:
    # moto: NotificationConfiguration is ignored, so EventBridge delivery stays off and
    # "Object Created" never reaches the default bus. CFN shape -> API shape.
    cfn = props["NotificationConfiguration"]
    config: dict[str, Any] = {}
    if _truthy(cfn.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled", False)):
        config["EventBridgeConfiguration"] = {}
    for cfn_key, api_key, target_key, api_target in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        entries = []
        for entry in cfn.get(cfn_key, []):
            item: dict[str, Any] = {api_target: entry[target_key], "Events": [entry["Event"]]}
            rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                item["Filter"] = {"Key": {"FilterRules": rules}}
            entries.append(item)
        if entries:
            config[api_key] = entries
    r.clients("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


def _ddb_ttl(r: _Resolver, table: str, props: dict[str, Any]) -> None:
    # moto: Table.create_from_cloudformation_json ignores TimeToLiveSpecification.
    spec = props["TimeToLiveSpecification"]
    r.clients("dynamodb").update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={
            "AttributeName": spec["AttributeName"],
            "Enabled": _truthy(spec.get("Enabled", True)),
        },
    )


def _ddb_pitr(r: _Resolver, table: str, props: dict[str, Any]) -> None:
    # moto: Table.create_from_cloudformation_json ignores PointInTimeRecoverySpecification.
    spec = props["PointInTimeRecoverySpecification"]
    r.clients("dynamodb").update_continuous_backups(
        TableName=table,
        PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": _truthy(spec.get("PointInTimeRecoveryEnabled", False))
        },
    )


def _iam_managed_policies(r: _Resolver, role: str, props: dict[str, Any]) -> None:
    # moto: Role.create_from_cloudformation_json ignores ManagedPolicyArns. moto knows AWS
    # managed policies only with config iam.load_aws_managed_policies (off by default,
    # ~1 s to load); without them the attachment is skipped (moto enforces no IAM anyway).
    iam = r.clients("iam")
    skipped = []
    for arn in props["ManagedPolicyArns"]:
        if arn.startswith(f"arn:{r.partition}:iam::aws:policy/") and not _aws_policies_loaded(r):
            skipped.append(arn.rsplit("/", 1)[-1])
            continue
        try:
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        except ClientError as error:
            if _error_code(error) != "NoSuchEntity":
                raise
            skipped.append(arn.rsplit("/", 1)[-1])
    if skipped:
        logger.debug("role %s: managed policies unknown to moto, not attached: %s", role, ", ".join(skipped))


def _aws_policies_loaded(r: _Resolver) -> bool:
    """Whether moto knows AWS managed policies (asked once per deploy)."""
    if r.aws_policies_loaded is None:
        try:
            r.clients("iam").get_policy(PolicyArn=f"arn:{r.partition}:iam::aws:policy/ReadOnlyAccess")
            r.aws_policies_loaded = True
        except ClientError:
            r.aws_policies_loaded = False
    return r.aws_policies_loaded


def _lambda_layers(r: _Resolver, function: str, props: dict[str, Any]) -> None:
    # moto: LambdaFunction.create_from_cloudformation_json ignores Layers (the function
    # code still imports the layer's package: it is installed in the local venv).
    r.clients("lambda").update_function_configuration(
        FunctionName=function, Layers=[str(arn) for arn in props["Layers"]]
    )


def _lambda_logging(r: _Resolver, function: str, props: dict[str, Any]) -> None:
    # moto: LambdaFunction.create_from_cloudformation_json ignores LoggingConfig (kept by
    # localaws.logs.shipping once it is set through the API)
    r.clients("lambda").update_function_configuration(FunctionName=function, LoggingConfig=dict(props["LoggingConfig"]))


def _lambda_tags(r: _Resolver, function: str, props: dict[str, Any]) -> None:
    # moto: LambdaFunction.create_from_cloudformation_json ignores Tags.
    lam = r.clients("lambda")
    arn = lam.get_function_configuration(FunctionName=function)["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={t["Key"]: str(t["Value"]) for t in props["Tags"]})


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


_FIXUPS: dict[str, dict[str, _Fixup]] = {
    "AWS::S3::Bucket": {
        "VersioningConfiguration": _s3_versioning,
        "PublicAccessBlockConfiguration": _s3_public_access_block,
        "OwnershipControls": _s3_ownership_controls,
        "NotificationConfiguration": _s3_notifications,
    },
    "AWS::DynamoDB::Table": {
        "TimeToLiveSpecification": _ddb_ttl,
        "PointInTimeRecoverySpecification": _ddb_pitr,
    },
    "AWS::IAM::Role": {"ManagedPolicyArns": _iam_managed_policies},
    "AWS::Lambda::Function": {"Layers": _lambda_layers, "Tags": _lambda_tags, "LoggingConfig": _lambda_logging},
}

# What moto's models apply themselves (read from their create_from_cloudformation_json).
# Anything else on these types that no fixup covers is reported at DEBUG level.
_NATIVE: dict[str, frozenset[str]] = {
    "AWS::S3::Bucket": frozenset({"BucketName", "BucketEncryption", "Tags"}),
    "AWS::DynamoDB::Table": frozenset(
        {
            "TableName",
            "KeySchema",
            "AttributeDefinitions",
            "GlobalSecondaryIndexes",
            "ProvisionedThroughput",
            "LocalSecondaryIndexes",
            "StreamSpecification",
            "Tags",
            "DeletionProtectionEnabled",
            "SSESpecification",
            "WarmThroughput",
            "BillingMode",
        }
    ),
    "AWS::Lambda::Function": frozenset(
        {
            "Code",
            "FunctionName",
            "Handler",
            "Role",
            "Runtime",
            "Description",
            "MemorySize",
            "Publish",
            "Timeout",
            "VpcConfig",
            "Environment",
            "ReservedConcurrentExecutions",
        }
    ),
    "AWS::IAM::Role": frozenset(
        {
            "RoleName",
            "AssumeRolePolicyDocument",
            "Path",
            "PermissionsBoundary",
            "Description",
            "Tags",
            "MaxSessionDuration",
            "Policies",
        }
    ),
}


def _apply_fixups(template: dict[str, Any], resolver: _Resolver, clients: _Clients) -> None:
    for logical, resource in template["Resources"].items():
        kind = resource["Type"]
        fixups = _FIXUPS.get(kind, {})
        props = resource.get("Properties") or {}
        if not resolver.condition_holds(resource.get("Condition")):
            continue
        ignored = set(props) - set(fixups) - _NATIVE.get(kind, set(props))
        if ignored:
            logger.debug("%s (%s): moto ignores %s", logical, kind, ", ".join(sorted(ignored)))
        by_fixup: dict[_Fixup, list[str]] = {}
        for prop, fixup in fixups.items():
            if prop in props:
                by_fixup.setdefault(fixup, []).append(prop)
        for fixup, names in by_fixup.items():
            try:
                resolved = resolver.resolve({name: props[name] for name in names})
            except _Unresolvable as error:
                logger.warning("%s: %s not applied locally: cannot resolve %s", logical, ", ".join(names), error)
                continue
            try:
                fixup(resolver, resolver.physical[logical], resolved)
            except ClientError as error:
                raise DeployError(f"{logical}: applying {', '.join(names)} failed: {error}") from error


def resources_of_type(stack: Stack, resource_type: str) -> dict[str, str]:
    """logical id -> physical id of the stack's resources of ``resource_type``."""
    return {k: stack.resources[k] for k, t in stack.resource_types.items() if t == resource_type}


__all__ = [
    "DEFAULT_STACK_NAME",
    "DeployError",
    "Stack",
    "deploy",
    "deploy_bucket_name",
    "resources_of_type",
    "translate",
]
