"""The one list of the local AWS's extensions to moto, in the order they are installed.

Each entry names the extension, the module that holds it (with its ``install()``,
``uninstall()`` and ``installed()``, patching through :mod:`localaws.patching`), the moto
gap it fills in one line (the module's docstring has the detail and the symbols it
patches), and whether handler tests keep it on. :func:`localaws.server.install_extensions`
installs them all; handler tests (``tests/handlers``) call the handlers themselves, so
:func:`for_handler_tests` switches off the extensions that would run work behind their back
(deliveries, jobs, endpoints, events) and keeps the ones that correct moto.

Not listed: :mod:`localaws.faults`, the fault injector of the tests, which its own calls
install on demand (same helper, same three functions).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Extension:
    name: str
    module: str
    gap: str  # the moto gap it fills, one line
    in_handler_tests: bool  # handler tests keep it on

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def install(self) -> None:
        self.load().install()

    def uninstall(self) -> None:
        self.load().uninstall()

    def installed(self) -> bool:
        return bool(self.load().installed())


EXTENSIONS: tuple[Extension, ...] = (
    Extension("unsupported_api", "localaws.unsupported",
              "moto's server answers an operation it lacks with an HTML 500 page that botocore retries", True),
    Extension("lambda_runtime", "localaws.awslambda.runtime",
              "moto runs Lambda code only in Docker; this runs the handlers in-process", False),
    Extension("eventbridge", "localaws.events.delivery",
              "moto's rules cannot deliver to Lambda, Step Functions or SNS targets", False),
    Extension("sfn_time", "localaws.stepfunctions.clock",
              "moto's Step Functions sleeps through Wait states and Retry intervals in real time", True),
    Extension("sfn_callbacks", "localaws.stepfunctions.callbacks",
              "moto's SendTaskFailure drops the cause", True),
    Extension("sfn_mock", "localaws.stepfunctions.mock",
              "moto carries Step Functions Local's mocked integrations but never loads a mock config", True),
    Extension("cloudwatch_logs", "localaws.logs.shipping",
              "moto's Lambda ignores LoggingConfig and its Step Functions executions write no logs", True),
    Extension("s3_policy", "localaws.s3.policy",
              "moto cannot evaluate aws:SecureTransport, so a TLS-only bucket policy denies everything", True),
    Extension("iam_simulator", "localaws.iam.simulator",
              "moto has no iam:SimulatePrincipalPolicy (SDK v3's role check); IAM is not enforced locally", True),
    Extension("cfn_types", "localaws.cloudformation.types",
              "moto's CloudFormation lacks models the template uses, and runs no custom resources", True),
    Extension("cfn_template_cache", "localaws.cloudformation.template_cache",
              "moto's CloudFormation re-parses the same template body with pure-Python PyYAML on every boot", True),
    Extension("sagemaker_models", "localaws.sagemaker.models",
              "moto's DescribeModel returns an empty VpcConfig (AWS omits it; SDK v3's shapes reject it), and "
              "CreateModelPackageGroup replaces an existing group instead of refusing it", True),
    Extension("sagemaker_search", "localaws.sagemaker.search",
              "moto's Search refuses nested property names (ModelArtifacts.S3ModelArtifacts), which SDK v2 uses", True),
    Extension("sagemaker_jobs", "localaws.sagemaker.jobs.runner",
              "moto's processing, training and transform jobs are records that run nothing", False),
    Extension("sagemaker_registry", "localaws.sagemaker.registry",
              "moto emits no model package events, and approvals wipe the package's metadata", False),
    Extension("sagemaker_endpoints", "localaws.sagemaker.endpoints.service",
              "moto's endpoints serve no model: no invocations, updates, capture, metrics or events", False),
    Extension("model_monitor", "localaws.sagemaker.monitor.service",
              "moto has no monitoring schedules, and the analyzer image runs nothing", False),
)


def names() -> list[str]:
    return [extension.name for extension in EXTENSIONS]


def get(name: str) -> Extension:
    for extension in EXTENSIONS:
        if extension.name == name:
            return extension
    raise KeyError(f"no extension named {name!r}; choose from {', '.join(names())}")


def install_all() -> list[str]:
    """Install every extension, in order (idempotent). Returns their names."""
    for extension in EXTENSIONS:
        extension.install()
    return names()


@contextmanager
def for_handler_tests() -> Iterator[None]:
    """The extensions handler tests keep are installed; the others are switched off (last
    installed first) and, on exit, those that were on are installed again, in order."""
    for extension in EXTENSIONS:
        if extension.in_handler_tests:
            extension.install()
    switched_off = [e for e in reversed(EXTENSIONS) if not e.in_handler_tests and e.installed()]
    for extension in switched_off:
        extension.uninstall()
    try:
        yield
    finally:
        for extension in reversed(switched_off):
            extension.install()
