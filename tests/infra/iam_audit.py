"""What each function's and state machine's IAM policies grant, and what its code needs.

Granted: the Allow statements of template.yaml (both sides of an ``Fn::If``) and the SAM
policy templates the template uses. Needed, for a function: the AWS API calls its code can
make, found statically. The walk starts at ``handler`` in ``functions/<name>/app.py`` and
follows calls and references through ``src/autoloop`` function by function (not module by
module: every TrainingPipeline handler imports ``autoloop.training_steps``, but each calls one
function of it). An API call is a method of an ``adapters.client("<service>")`` value: called directly, through a
variable, passed as a callable, by ``get_paginator("<op>")`` or by ``getattr`` with a
module-level table of operation names. For a state machine: the ASL's service integrations
and the Lambda functions its tasks invoke.

The IAM action of an operation is its API name with the service's prefix, except where
IAM names it otherwise (``IAM_EXCEPTIONS``). Some actions are needed without a call of that
name (``implied``): tags on a create call need ``sagemaker:AddTags`` (on PutMetricAlarm,
``cloudwatch:TagResource``), a request that names a role (SageMaker's, or a Scheduler
schedule's target) needs ``iam:PassRole``, and with ``KmsKeyArn`` set, reading and writing encrypted
objects or the encrypted topic needs the key.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

from tests.infra.template_utils import ROOT, asl_with_dummies, resources

SRC = ROOT / "src"
PACKAGE = "autoloop"
IAM_PREFIX = {"stepfunctions": "states", "s3": "s3", "sagemaker": "sagemaker", "dynamodb": "dynamodb",
              "sns": "sns", "cloudwatch": "cloudwatch", "events": "events", "lambda": "lambda",
              "logs": "logs", "cloudformation": "cloudformation", "scheduler": "scheduler"}
# boto3 methods whose IAM action is not the API name (the S3 Service Authorization Reference).
IAM_EXCEPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # HeadObject is how the code tells a missing object from a present one: S3 answers 404
    # only to a caller allowed s3:ListBucket, 403 to anyone else.
    ("s3", "head_object"): ("s3:GetObject", "s3:ListBucket"),
    ("s3", "list_objects_v2"): ("s3:ListBucket",),
    ("s3", "list_objects"): ("s3:ListBucket",),
    ("s3", "list_object_versions"): ("s3:ListBucketVersions",),
    ("s3", "delete_objects"): ("s3:DeleteObject",),
    ("s3", "copy"): ("s3:GetObject", "s3:PutObject"),  # managed copy: CopyObject or UploadPartCopy
    ("s3", "copy_object"): ("s3:GetObject", "s3:PutObject"),
    ("s3", "download_file"): ("s3:GetObject",),
    ("s3", "upload_file"): ("s3:PutObject",),
    # A multipart upload's calls are authorized as PutObject; a part copied from another object
    # also reads that object (the S3 Service Authorization Reference).
    ("s3", "create_multipart_upload"): ("s3:PutObject",),
    ("s3", "upload_part"): ("s3:PutObject",),
    ("s3", "upload_part_copy"): ("s3:GetObject", "s3:PutObject"),
    ("s3", "complete_multipart_upload"): ("s3:PutObject",),
}
# boto3's injected (non-API) client methods the code may use.
TRANSFER_METHODS = {"s3": {"copy", "download_file", "upload_file"}}
# With KmsKeyArn set: the key actions an S3 or SNS call needs (object reads decrypt, writes
# generate a data key, an SNS publisher needs both) and those of an endpoint whose config
# names the key (the caller lets SageMaker use it through a grant).
KMS_FOR_CALL: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "get_object"): ("kms:Decrypt",),
    ("s3", "download_file"): ("kms:Decrypt",),
    ("s3", "put_object"): ("kms:GenerateDataKey",),
    ("s3", "upload_file"): ("kms:GenerateDataKey", "kms:Decrypt"),
    ("s3", "copy"): ("kms:Decrypt", "kms:GenerateDataKey"),
    ("s3", "copy_object"): ("kms:Decrypt", "kms:GenerateDataKey"),
    ("s3", "create_multipart_upload"): ("kms:GenerateDataKey",),
    ("s3", "upload_part_copy"): ("kms:Decrypt", "kms:GenerateDataKey"),
    ("sns", "publish"): ("kms:GenerateDataKey", "kms:Decrypt"),
    ("sagemaker", "create_endpoint"): ("kms:CreateGrant", "kms:DescribeKey"),
    ("sagemaker", "update_endpoint"): ("kms:CreateGrant", "kms:DescribeKey"),
}
# Step Functions service integrations (optimized; aws-sdk:* ones follow the SDK's names).
SFN_INTEGRATIONS = {
    "sns:publish": ("sns:Publish",),
    "dynamodb:updateItem": ("dynamodb:UpdateItem",),
    "dynamodb:getItem": ("dynamodb:GetItem",),
    "dynamodb:putItem": ("dynamodb:PutItem",),
    "dynamodb:deleteItem": ("dynamodb:DeleteItem",),
    "lambda:invoke": ("lambda:InvokeFunction",),
    "states:startExecution": ("states:StartExecution",),
}
# Step Functions' CloudWatch Logs delivery (Logging in the template): these, on "*".
SFN_LOG_DELIVERY = {
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
SAM_POLICY_TEMPLATES = {
    "LambdaInvokePolicy": ("lambda:InvokeFunction",),
    "SNSPublishMessagePolicy": ("sns:Publish",),
}


# ============================================================================ granted
def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _unwrap_if(value: Any) -> list[Any]:
    """Both branches of an Fn::If (an AWS::NoValue branch is nothing)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, yes, no = value["Fn::If"]
        return [*_unwrap_if(yes), *_unwrap_if(no)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


@dataclass(frozen=True)
class Statement:
    owner: str
    actions: tuple[str, ...]
    resources: tuple[Any, ...]
    condition: Any = None
    conditional: bool = False  # inside an Fn::If (e.g. only with a KMS key or a VPC)


def statements() -> Iterator[Statement]:
    """Every Allow statement of a role, function or state machine in the template."""
    for name, res in resources().items():
        props = res.get("Properties", {})
        policies: list[Any] = []
        if res["Type"] == "AWS::IAM::Role":
            policies = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
            policies = [p for p in _as_list(props.get("Policies", [])) for p in _unwrap_if(p)]
        for policy in policies:
            if not isinstance(policy, dict):
                continue
            template = next((k for k in policy if k in SAM_POLICY_TEMPLATES), None)
            if template:
                yield Statement(name, SAM_POLICY_TEMPLATES[template], (json.dumps(policy[template]),))
                continue
            for raw in _as_list(policy.get("Statement", [])):
                conditional = isinstance(raw, dict) and "Fn::If" in raw
                for statement in _unwrap_if(raw):
                    if statement.get("Effect") == "Allow":
                        yield Statement(name, tuple(_as_list(statement["Action"])),
                                        tuple(_as_list(statement["Resource"])), statement.get("Condition"),
                                        conditional)


def granted(owner: str) -> set[str]:
    return {a for s in statements() if s.owner == owner for a in s.actions}


# ============================================================================ needed: code
@cache
def _service_operations(service: str) -> dict[str, Any]:
    """boto3 method name -> botocore OperationModel."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): model.operation_model(op) for op in model.operation_names}


def _mentions(shape: Any, names: set[str], seen: set[str] | None = None) -> bool:
    """Whether an input shape has a member named one of ``names``, at any depth."""
    seen = set() if seen is None else seen
    if shape is None or shape.name in seen:
        return False
    seen.add(shape.name)
    if shape.type_name == "structure":
        return any(m in names or _mentions(s, names, seen) for m, s in shape.members.items())
    if shape.type_name == "list":
        return _mentions(shape.member, names, seen)
    if shape.type_name == "map":
        return _mentions(shape.value, names, seen)
    return False


def iam_actions(service: str, method: str) -> set[str]:
    if (service, method) in IAM_EXCEPTIONS:
        return set(IAM_EXCEPTIONS[(service, method)])
    op = _service_operations(service)[method]
    return {f"{IAM_PREFIX[service]}:{op.name}"}


def implied_actions(service: str, method: str) -> dict[str, str]:
    """Actions a call needs besides its own, with why."""
    out: dict[str, str] = {}
    ops = _service_operations(service)
    if method not in ops:
        return out
    shape = ops[method].input_shape
    if service == "sagemaker" and method.startswith("create_") and shape is not None and "Tags" in shape.members:
        out["sagemaker:AddTags"] = f"{method} with Tags"
    if service == "sagemaker" and _mentions(shape, {"RoleArn", "ExecutionRoleArn"}):
        out["iam:PassRole"] = f"{method} names a role"
    if service == "scheduler" and method in {"create_schedule", "update_schedule"}:
        out["iam:PassRole"] = f"{method} names the role its target is started with"
    # CloudWatch: "to create an alarm with tags, you must have cloudwatch:TagResource".
    if service == "cloudwatch" and method == "put_metric_alarm" and shape is not None and "Tags" in shape.members:
        out["cloudwatch:TagResource"] = f"{method} with Tags"
    return out


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # alias -> (module, attr)
    defs: dict[str, ast.AST] = field(default_factory=dict)  # functions and classes
    tables: dict[str, list[str]] = field(default_factory=dict)  # module-level dicts of strings


@cache
def _module(name: str) -> _Module | None:
    if name.startswith("functions."):
        path = ROOT / "functions" / name.split(".")[1] / "app.py"
    elif name == PACKAGE or name.startswith(PACKAGE + "."):
        parts = name.split(".")
        path = SRC.joinpath(*parts).with_suffix(".py")
        if not path.exists():
            path = SRC.joinpath(*parts, "__init__.py")
    else:
        return None
    if not path.exists():
        return None
    mod = _Module(name, path, ast.parse(path.read_text(), str(path)))
    # Imports anywhere (a function may import lazily), then the module's top-level definitions.
    nodes = [n for n in ast.walk(mod.tree) if isinstance(n, ast.Import | ast.ImportFrom)] + mod.tree.body
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if _module_exists(sub):
                    mod.imports[alias.asname or alias.name] = (sub, None)
                else:
                    mod.imports[alias.asname or alias.name] = (node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                mod.imports[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            mod.defs[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            values = [v.value for v in node.value.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            for target in targets:
                if isinstance(target, ast.Name):
                    mod.tables[target.id] = values
    return mod


def _module_exists(name: str) -> bool:
    if not name.startswith(PACKAGE):
        return False
    parts = name.split(".")
    return SRC.joinpath(*parts).with_suffix(".py").exists() or SRC.joinpath(*parts, "__init__.py").exists()


Def = tuple[str, str]  # (module, qualified name: "f" or "Class.method")


@dataclass
class Usage:
    calls: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (service, method) -> where
    kwargs: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # keyword names seen ("**" too)
    visited: set[Def] = field(default_factory=set)

    def add(self, service: str, method: str, where: str, keywords: set[str]) -> None:
        self.calls.setdefault((service, method), set()).add(where)
        self.kwargs.setdefault((service, method), set()).update(keywords)


class _Walker:
    def __init__(self) -> None:
        self.usage = Usage()
        self.todo: list[Def] = []

    # ---- name resolution
    def _resolve(self, mod: _Module, name: str) -> tuple[str, str | None] | None:
        """A name in ``mod``: (module, def name) of a package def, or (module, None) of a package module."""
        if name in mod.defs:
            return mod.name, name
        if name in mod.imports:
            target, attr = mod.imports[name]
            if not target.startswith(PACKAGE):
                return None
            if attr is None:
                return target, None
            imported = _module(target)
            if imported is not None and attr in imported.imports and attr not in imported.defs:
                return self._resolve(imported, attr)  # re-exported
            return target, attr
        return None

    def _resolve_expr(self, mod: _Module, node: ast.AST) -> tuple[str, str | None] | None:
        if isinstance(node, ast.Name):
            return self._resolve(mod, node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve_expr(mod, node.value)
            if base is not None and base[1] is None:
                target = _module(base[0])
                if target is not None:
                    return self._resolve(target, node.attr) if node.attr in target.defs or node.attr in \
                        target.imports else None
        return None

    def _client_service(self, mod: _Module, node: ast.AST, clients: dict[str, str]) -> str | None:
        """The service of a ``client("svc")`` expression or of a variable bound to one."""
        if isinstance(node, ast.Name) and node.id in clients:
            return clients[node.id]
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            target = self._resolve_expr(mod, node.func)
            if target == (f"{PACKAGE}.adapters", "client"):
                return str(node.args[0].value)
        return None

    def _visit_def(self, d: Def) -> None:
        if d in self.usage.visited:
            return
        self.usage.visited.add(d)
        mod = _module(d[0])
        if mod is None:
            return
        owner, _, method = d[1].partition(".")
        node = mod.defs.get(owner)
        if node is None:
            return
        if isinstance(node, ast.ClassDef):
            if not method:  # the class itself: its constructor
                method = "__init__"
            body = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == method), None)
            if body is None:
                return
            self._scan(mod, body, f"{mod.name}.{d[1]}", cls=(mod.name, owner))
        else:
            self._scan(mod, node, f"{mod.name}.{d[1]}", cls=None)

    def _queue(self, target: tuple[str, str | None] | None) -> None:
        if target is not None and target[1] is not None:
            self.todo.append((target[0], target[1]))

    def _scan(self, mod: _Module, func: ast.AST, where: str, cls: tuple[str, str] | None) -> None:
        clients: dict[str, str] = {}
        instances: dict[str, tuple[str, str]] = {}  # variable -> (module, class)
        if cls is not None:
            instances["self"] = cls
        nodes = list(ast.walk(func))
        for node in nodes:  # bindings first: var = client("svc"), var = Class(...)
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                var, value = node.targets[0].id, node.value
                service = self._client_service(mod, value, clients)
                if service:
                    clients[var] = service
                elif isinstance(value, ast.Call):
                    target = self._resolve_expr(mod, value.func)
                    if target and target[1] and isinstance(_module(target[0]).defs.get(target[1]), ast.ClassDef):  # type: ignore[union-attr]
                        instances[var] = (target[0], target[1])
        for node in nodes:
            if isinstance(node, ast.Attribute):
                service = self._client_service(mod, node.value, clients)
                if service:
                    self._api(service, node.attr, where, self._keywords(nodes, node))
                    continue
                inst = self._instance(mod, node.value, instances)
                if inst is not None:
                    self.todo.append((inst[0], f"{inst[1]}.{node.attr}"))
                    continue
                self._queue(self._resolve_expr(mod, node))
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                self._queue(self._resolve(mod, node.id))
            elif isinstance(node, ast.Call):
                self._special_call(mod, node, clients, where)

    def _instance(self, mod: _Module, node: ast.AST, instances: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
        if isinstance(node, ast.Name) and node.id in instances:
            return instances[node.id]
        if isinstance(node, ast.Call):
            target = self._resolve_expr(mod, node.func)
            if target and target[1]:
                m = _module(target[0])
                if m is not None and isinstance(m.defs.get(target[1]), ast.ClassDef):
                    return target[0], target[1]
        return None

    @staticmethod
    def _keywords(nodes: list[ast.AST], attribute: ast.Attribute) -> set[str]:
        for node in nodes:
            if isinstance(node, ast.Call) and node.func is attribute:
                return {k.arg or "**" for k in node.keywords}
        return {"**"}  # passed as a callable: its arguments are not known here

    def _special_call(self, mod: _Module, node: ast.Call, clients: dict[str, str], where: str) -> None:
        func = node.func
        # client.get_paginator("op")
        if isinstance(func, ast.Attribute) and func.attr == "get_paginator" and node.args:
            service = self._client_service(mod, func.value, clients)
            if service and isinstance(node.args[0], ast.Constant):
                self._api(service, str(node.args[0].value), where, {"**"})
        # getattr(client, TABLE[key])
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            service = self._client_service(mod, node.args[0], clients)
            name = node.args[1]
            if service and isinstance(name, ast.Subscript) and isinstance(name.value, ast.Name):
                for op in mod.tables.get(name.value.id, []):
                    self._api(service, op, where, {"**"})

    def _api(self, service: str, method: str, where: str, keywords: set[str]) -> None:
        if method in _service_operations(service) or method in TRANSFER_METHODS.get(service, set()):
            self.usage.add(service, method, where, keywords)
        elif method not in {"get_paginator", "exceptions", "meta", "can_paginate", "get_waiter"}:
            raise AssertionError(f"{where}: {service}.{method} is not an API operation of {service}")

    def run(self, start: Def) -> Usage:
        self.todo.append(start)
        while self.todo:
            self._visit_def(self.todo.pop())
        return self.usage


def code_usage(function_folder: str) -> Usage:
    return _Walker().run((f"functions.{function_folder}", "handler"))


@dataclass
class Need:
    actions: dict[str, set[str]]  # action -> why (call sites or the reason it is implied)
    kms: dict[str, set[str]]  # KMS actions needed when KmsKeyArn is set


def needed_by_code(function_folder: str) -> Need:
    usage = code_usage(function_folder)
    actions: dict[str, set[str]] = {}
    kms: dict[str, set[str]] = {}
    for (service, method), where in usage.calls.items():
        call = f"{service}.{method}"
        for action in iam_actions(service, method):
            actions.setdefault(action, set()).update(f"{call} in {w}" for w in where)
        if service == "s3" and method == "get_object" and usage.kwargs[(service, method)] & {"VersionId", "**"}:
            actions.setdefault("s3:GetObjectVersion", set()).add(f"{call} with a VersionId")
        for action, why in implied_actions(service, method).items():
            actions.setdefault(action, set()).add(why)
        for action in KMS_FOR_CALL.get((service, method), ()):
            kms.setdefault(action, set()).add(call)
    return Need(actions, kms)


# ============================================================================ needed: ASL
def _tasks(states: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in states.values():
        if state.get("Type") == "Task":
            yield state
        for branch in state.get("Branches", []):
            yield from _tasks(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _tasks(state[key]["States"])


def needed_by_state_machine(logical_id: str) -> tuple[dict[str, set[str]], set[str]]:
    """(action -> why, the Lambda substitution names it invokes) from the ASL."""
    _, asl = asl_with_dummies(logical_id)
    actions: dict[str, set[str]] = {}
    invoked: set[str] = set()
    for task in _tasks(asl["States"]):
        resource = task["Resource"]
        if resource.startswith("arn:aws:lambda:"):
            invoked.add(resource.rsplit(":", 1)[-1])
            actions.setdefault("lambda:InvokeFunction", set()).add("a Lambda task")
            continue
        integration = resource.removeprefix("arn:aws:states:::").split(".")[0]
        if integration.startswith("aws-sdk:"):
            _, service, op = integration.split(":")
            iam = {f"{IAM_PREFIX.get(service, service)}:{op[0].upper()}{op[1:]}"}
        else:
            assert integration in SFN_INTEGRATIONS, f"{logical_id}: add {integration} to SFN_INTEGRATIONS"
            iam = set(SFN_INTEGRATIONS[integration])
        for action in iam:
            actions.setdefault(action, set()).add(resource)
        if integration == "lambda:invoke":
            name = task["Parameters"]["FunctionName"]
            invoked.add(str(name).rsplit(":", 1)[-1])
    return actions, invoked
