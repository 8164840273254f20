"""CloudFormation models for moto's CloudFormation: types it lacks, and fixes to some it has.

Added (moto has no model): ``AWS::SageMaker::ModelPackageGroup``, ``AWS::S3::BucketPolicy``,
``AWS::SNS::Subscription``, ``AWS::Scheduler::Schedule``, ``AWS::CloudWatch::Alarm``.
Replaced for Lambda-backed custom resources (``Custom::*``, ``AWS::CloudFormation::CustomResource``):
moto's model sends Create only, to a URL nothing in-process reaches; see :class:`CustomResource`.
Replaced (moto's model is wrong for local mode): ``AWS::StepFunctions::StateMachine``
(wrong backend when ASL execution is on), ``AWS::Lambda::LayerVersion`` (no ``Ref``).
Extended (moto's model cannot be updated, so a stack update drops the resource):
``AWS::Logs::LogGroup``, ``AWS::DynamoDB::Table``, ``AWS::Lambda::Permission``.

moto (5.2.5) builds its list of CloudFormation models from the direct subclasses of
``moto.core.common_models.CloudFormationModel`` and caches it (``get_model_list`` /
``get_model_map`` in ``moto.cloudformation.parsing`` are ``lru_cache``d). A type with no
model is skipped with a warning, and then:

- a ``Ref`` to it resolves to ``None`` and the referring property is silently dropped;
- a ``Fn::GetAtt`` on it inside ``Resources`` leaves a stray ``{"Fn::GetAtt": ...}``
  (or the stack stuck in ``CREATE_IN_PROGRESS``);
- a ``Fn::GetAtt`` on it in ``Outputs`` makes ``create_stack`` fail.

Each class below creates the resource through moto's own service backend, so the
service's API (``describe_*``/``list_*``) sees it exactly as if it had been created by an
API call. :func:`install` (also named :func:`register`) makes moto see the classes, and
patches ``moto.cloudformation.parsing.resource_class_from_type`` and
``CloudFormationBackend.delete_stack`` for custom resources; it is idempotent and cheap.

These models run inside moto, so they apply to ``moto.mock_aws`` and to a moto server
started in this process (``ThreadedMotoServer``); a moto server in another process needs
to import this module and call :func:`install` itself.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from moto.core.common_models import CloudFormationModel

from localaws.patching import Patches

logger = logging.getLogger(__name__)
PATCHES = Patches("cfn_types")


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in properties.get("Tags") or []]


# --------------------------------------------------------------------------- SageMaker
class ModelPackageGroup(CloudFormationModel):
    """``AWS::SageMaker::ModelPackageGroup``: moto's SageMaker backend has the API
    (create/describe/list model package groups) but no CloudFormation model.

    ``Ref`` returns the group ARN (as on AWS); ``GetAtt`` supports ``ModelPackageGroupArn``,
    ``ModelPackageGroupName``, ``CreationTime`` and ``ModelPackageGroupStatus``.
    """

    def __init__(self, account_id: str, region_name: str, name: str) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.name = name

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[account_id][region_name]

    @property
    def _group(self) -> Any:
        return self._backend(self.account_id, self.region_name).describe_model_package_group(self.name)

    @property
    def physical_resource_id(self) -> str:
        return str(self._group.arn)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ModelPackageGroupName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SageMaker::ModelPackageGroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in (
            "ModelPackageGroupArn",
            "ModelPackageGroupName",
            "CreationTime",
            "ModelPackageGroupStatus",
        )

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        group = self._group
        if attribute_name == "ModelPackageGroupArn":
            return group.arn
        if attribute_name == "ModelPackageGroupName":
            return group.model_package_group_name
        if attribute_name == "CreationTime":
            return str(group.creation_time)
        if attribute_name == "ModelPackageGroupStatus":
            return group.model_package_group_status
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> ModelPackageGroup:
        properties = cloudformation_json.get("Properties") or {}
        # resource_name is ModelPackageGroupName when given, else a generated name.
        name = str(properties.get("ModelPackageGroupName") or resource_name)
        cls._backend(account_id, region_name).create_model_package_group(
            model_package_group_name=name,
            model_package_group_description=properties.get("ModelPackageGroupDescription", ""),
            tags=_tags(properties),
        )
        return cls(account_id, region_name, name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: ModelPackageGroup,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> ModelPackageGroup:
        properties = cloudformation_json.get("Properties") or {}
        name = str(properties.get("ModelPackageGroupName") or original_resource.name)
        if name != original_resource.name:  # the name is immutable: replacement
            new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return new
        group = original_resource._group
        group.model_package_group_description = properties.get("ModelPackageGroupDescription", "")
        group.tags = _tags(properties)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        name = resource_name.rsplit("/", 1)[-1]  # the physical id is the ARN
        cls._backend(account_id, region_name).model_package_groups.pop(name, None)

    def delete(self, account_id: str, region_name: str) -> None:
        # moto's SageMaker backend has no delete_model_package_group.
        self._backend(account_id, region_name).model_package_groups.pop(self.name, None)

    def is_created(self) -> bool:
        return True


# --------------------------------------------------------------------------- S3
class BucketPolicy(CloudFormationModel):
    """``AWS::S3::BucketPolicy``: moto has ``put_bucket_policy`` but no model, so the
    policy was silently not applied. ``Ref`` returns the bucket name.

    Note: moto evaluates a bucket policy's ``Deny`` on every object request
    (``S3Response._key_response``) and cannot evaluate ``aws:SecureTransport``, so the
    template's TLS-only statement alone would deny everything; ``localaws.cloudformation.stack.deploy``
    installs ``localaws.s3.policy``, which evaluates it as for a TLS request.
    """

    def __init__(self, account_id: str, region_name: str, bucket: str) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.bucket = bucket

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        return s3_backends[account_id][get_partition(region_name)]

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> BucketPolicy:
        properties = cloudformation_json["Properties"]
        bucket = str(properties["Bucket"])
        document = properties["PolicyDocument"]
        if not isinstance(document, str):
            document = json.dumps(document)
        cls._backend(account_id, region_name).put_bucket_policy(bucket, document.encode())
        return cls(account_id, region_name, bucket)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: BucketPolicy,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> BucketPolicy:
        new = cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)
        if new.bucket != original_resource.bucket:
            original_resource.delete(account_id, region_name)
        return new

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        bucket = (cloudformation_json.get("Properties") or {}).get("Bucket", resource_name)
        cls(account_id, region_name, str(bucket)).delete(account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.s3.exceptions import MissingBucket

        try:
            self._backend(account_id, region_name).delete_bucket_policy(self.bucket)
        except MissingBucket:
            pass

    def is_created(self) -> bool:
        return True


# --------------------------------------------------------------------------- SNS
class SnsSubscription(CloudFormationModel):
    """``AWS::SNS::Subscription``: moto has ``subscribe`` but no model. ``Ref`` returns
    the subscription ARN. Attributes in the template (``FilterPolicy``,
    ``RawMessageDelivery``, ...) are set with moto's ``set_subscription_attributes``."""

    _ATTRIBUTES = (
        "DeliveryPolicy",
        "FilterPolicy",
        "FilterPolicyScope",
        "RawMessageDelivery",
        "RedrivePolicy",
        "SubscriptionRoleArn",
    )

    def __init__(self, account_id: str, region_name: str, arn: str) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.arn = arn

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        from moto.sns.models import sns_backends

        return sns_backends[account_id][region_name]

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> SnsSubscription:
        properties = cloudformation_json["Properties"]
        backend = cls._backend(account_id, region_name)
        subscription = backend.subscribe(
            str(properties["TopicArn"]), str(properties["Endpoint"]), properties["Protocol"]
        )
        for name in cls._ATTRIBUTES:
            if name in properties:
                value = properties[name]
                if isinstance(value, dict | list):
                    value = json.dumps(value)
                elif isinstance(value, bool):
                    value = "true" if value else "false"
                backend.set_subscription_attributes(subscription.arn, name, str(value))
        return cls(account_id, region_name, subscription.arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: SnsSubscription,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> SnsSubscription:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        cls._backend(account_id, region_name).unsubscribe(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        self._backend(account_id, region_name).unsubscribe(self.arn)

    def is_created(self) -> bool:
        return True


# --------------------------------------------------------------------------- CloudWatch alarms
class CloudWatchAlarm(CloudFormationModel):
    """``AWS::CloudWatch::Alarm``: moto has ``put_metric_alarm`` but no model. ``Ref``
    returns the alarm name, ``GetAtt Arn`` its ARN. Metric alarms only (no metric math)."""

    def __init__(self, account_id: str, region_name: str, name: str, arn: str) -> None:
        self.account_id, self.region_name, self.name, self.arn = account_id, region_name, name, arn

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends

        return cloudwatch_backends[account_id][region_name]

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> CloudWatchAlarm:
        p = cloudformation_json["Properties"]
        name = str(p.get("AlarmName") or resource_name)
        alarm = cls._backend(account_id, region_name).put_metric_alarm(
            name=name, namespace=p["Namespace"], metric_name=p["MetricName"],
            comparison_operator=p["ComparisonOperator"], evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p["Period"]), threshold=float(p["Threshold"]), statistic=p.get("Statistic"),
            description=p.get("AlarmDescription", ""),
            dimensions=[{"Name": d["Name"], "Value": str(d["Value"])} for d in p.get("Dimensions", [])],
            alarm_actions=list(p.get("AlarmActions", [])), extended_statistic=p.get("ExtendedStatistic"),
            datapoints_to_alarm=p.get("DatapointsToAlarm"), treat_missing_data=p.get("TreatMissingData"),
            unit=p.get("Unit"), actions_enabled=bool(p.get("ActionsEnabled", True)),
        )
        return cls(account_id, region_name, name, alarm.alarm_arn)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: CloudWatchAlarm, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> CloudWatchAlarm:
        cls._backend(account_id, region_name).delete_alarms([original_resource.name])
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        cls._backend(account_id, region_name).delete_alarms([resource_name])

    def is_created(self) -> bool:
        return True


# --------------------------------------------------------------------------- Lambda layers
class LambdaLayerVersion(CloudFormationModel):
    """``AWS::Lambda::LayerVersion``, replacing moto's own model, which
    - has no ``physical_resource_id``, so ``Ref`` (the layer version ARN on AWS) resolves
      to the model object; a function's ``Layers`` then cannot be applied or updated;
    - ignores ``LayerName`` (``cloudformation_name_type`` is ``"LayerVersion"``, not
      ``"LayerName"``) and ``CompatibleArchitectures``.
    The layer is published through moto's Lambda backend as usual.
    """

    def __init__(self, layer_version: Any) -> None:
        self.layer_version = layer_version

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[account_id][region_name]

    @property
    def physical_resource_id(self) -> str:
        return str(self.layer_version.arn)

    @staticmethod
    def cloudformation_name_type() -> str:
        return "LayerName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::LayerVersion"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "LayerVersionArn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "LayerVersionArn":
            return self.layer_version.arn
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LambdaLayerVersion:
        properties = cloudformation_json["Properties"]
        spec: dict[str, Any] = {
            "Content": properties["Content"],
            "LayerName": str(properties.get("LayerName") or resource_name),
        }
        for prop in (
            "Description",
            "CompatibleRuntimes",
            "CompatibleArchitectures",
            "LicenseInfo",
        ):
            if prop in properties:
                spec[prop] = properties[prop]
        return cls(cls._backend(account_id, region_name).publish_layer_version(spec))

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: LambdaLayerVersion,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> LambdaLayerVersion:
        # Layer versions are immutable: any change publishes a new version.
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        name, _, version = resource_name.rpartition(":")
        cls._backend(account_id, region_name).delete_layer_version(name, version)

    def delete(self, account_id: str, region_name: str) -> None:
        self._backend(account_id, region_name).delete_layer_version(
            self.layer_version.name, str(self.layer_version.version)
        )

    def is_created(self) -> bool:
        return True


# --------------------------------------------------------------------------- Scheduler
class SchedulerSchedule(CloudFormationModel):
    """``AWS::Scheduler::Schedule`` (SAM ``ScheduleV2`` events): moto has an EventBridge
    Scheduler backend but no model. ``Ref`` returns the schedule name; ``GetAtt Arn``.
    moto has no clock: schedules never fire by themselves."""

    _FIELDS = {
        "Description": "description",
        "EndDate": "end_date",
        "FlexibleTimeWindow": "flexible_time_window",
        "KmsKeyArn": "kms_key_arn",
        "ScheduleExpression": "schedule_expression",
        "ScheduleExpressionTimezone": "schedule_expression_timezone",
        "StartDate": "start_date",
        "State": "state",
        "Target": "target",
    }

    def __init__(self, account_id: str, region_name: str, group: str, name: str) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.group = group
        self.name = name

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        from moto.scheduler.models import scheduler_backends

        return scheduler_backends[account_id][region_name]

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::Schedule"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self._backend(self.account_id, self.region_name).get_schedule(self.group, self.name).arn
        raise UnformattedGetAttTemplateException()

    @classmethod
    def _kwargs(cls, properties: dict[str, Any]) -> dict[str, Any]:
        kwargs = {arg: properties.get(prop) for prop, arg in cls._FIELDS.items()}
        kwargs["flexible_time_window"] = kwargs["flexible_time_window"] or {"Mode": "OFF"}
        kwargs["target"] = dict(kwargs["target"] or {})
        return kwargs

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> SchedulerSchedule:
        properties = cloudformation_json["Properties"]
        name = str(properties.get("Name") or resource_name)[:64]
        group = str(properties.get("GroupName") or "default")
        cls._backend(account_id, region_name).create_schedule(
            group_name=group,
            name=name,
            action_after_completion=None,
            **cls._kwargs(properties),
        )
        return cls(account_id, region_name, group, name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: SchedulerSchedule,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> SchedulerSchedule:
        properties = cloudformation_json["Properties"]
        name = str(properties.get("Name") or original_resource.name)[:64]
        group = str(properties.get("GroupName") or "default")
        if (group, name) != (original_resource.group, original_resource.name):
            new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return new
        cls._backend(account_id, region_name).update_schedule(group_name=group, name=name, **cls._kwargs(properties))
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        group = (cloudformation_json.get("Properties") or {}).get("GroupName") or "default"
        cls(account_id, region_name, str(group), resource_name).delete(account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.scheduler.exceptions import ScheduleNotFound

        try:
            self._backend(account_id, region_name).delete_schedule(self.group, self.name)
        except ScheduleNotFound:
            pass

    def is_created(self) -> bool:
        return True


# --------------------------------------------------------------------------- Step Functions
class StepFunctionsStateMachine(CloudFormationModel):
    """``AWS::StepFunctions::StateMachine``, replacing moto's own model, which
    - always creates the state machine in moto's plain Step Functions backend, while with
      ``stepfunctions.execute_state_machine`` on (local mode) the API is served by the
      executing backend (``moto/stepfunctions/responses.py: get_backend``): the stack's
      state machine then does not exist for DescribeStateMachine or StartExecution;
    - ignores ``LoggingConfiguration``, ``TracingConfiguration``, ``StateMachineType``,
      ``Definition`` and ``DefinitionSubstitutions``;
    - has no ``GetAtt Arn``.
    The executing backend also validates the definition, as AWS does.
    """

    def __init__(self, backend: Any, arn: str) -> None:
        self.backend = backend
        self.arn = arn

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        from moto.stepfunctions.responses import get_backend

        return get_backend(account_id, region_name)

    @property
    def _machine(self) -> Any:
        return self.backend.describe_state_machine(self.arn)

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "StateMachineName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::StepFunctions::StateMachine"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Arn", "Name", "StateMachineName", "StateMachineRevisionId")

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.arn
        if attribute_name in ("Name", "StateMachineName"):
            return self._machine.name
        if attribute_name == "StateMachineRevisionId":
            return getattr(self._machine, "revision_id", None) or self.arn
        raise UnformattedGetAttTemplateException()

    @staticmethod
    def _definition(properties: dict[str, Any]) -> str:
        definition = properties.get("DefinitionString")
        if definition is None and "Definition" in properties:
            definition = json.dumps(properties["Definition"])
        definition = str(definition or "")
        for name, value in (properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + name + "}", str(value))
        return definition

    @staticmethod
    def _logging(properties: dict[str, Any]) -> dict[str, Any] | None:
        config = properties.get("LoggingConfiguration")
        if config is None:
            return None
        return {
            "level": config.get("Level", "OFF"),
            "includeExecutionData": str(config.get("IncludeExecutionData", False)).lower() == "true",
            "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                for d in config.get("Destinations", [])
            ],
        }

    @staticmethod
    def _tracing(properties: dict[str, Any]) -> dict[str, Any] | None:
        config = properties.get("TracingConfiguration")
        if config is None:
            return None
        return {"enabled": str(config.get("Enabled", False)).lower() == "true"}

    @staticmethod
    def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
        return [{"key": t["Key"], "value": str(t["Value"])} for t in _tags(properties)]

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> StepFunctionsStateMachine:
        properties = cloudformation_json.get("Properties") or {}
        backend = cls._backend(account_id, region_name)
        machine = backend.create_state_machine(
            name=str(properties.get("StateMachineName") or resource_name),
            definition=cls._definition(properties),
            roleArn=str(properties.get("RoleArn", "")),
            tags=cls._tags(properties),
            loggingConfiguration=cls._logging(properties),
            tracingConfiguration=cls._tracing(properties),
            sm_type=properties.get("StateMachineType", "STANDARD"),
        )
        return cls(backend, machine.arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: StepFunctionsStateMachine,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> StepFunctionsStateMachine:
        properties = cloudformation_json.get("Properties") or {}
        machine = original_resource._machine
        name = str(properties.get("StateMachineName") or machine.name)
        kind = properties.get("StateMachineType", "STANDARD")
        if name != machine.name or kind != getattr(machine, "type", kind):  # replacement
            new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return new
        original_resource.backend.update_state_machine(
            original_resource.arn,
            definition=cls._definition(properties),
            role_arn=properties.get("RoleArn"),
            logging_configuration=cls._logging(properties),
            tracing_configuration=cls._tracing(properties),
        )
        tags = {t["key"]: t["value"] for t in cls._tags(properties)}
        if tags:
            original_resource.backend.tag_resource(original_resource.arn, tags)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        cls._backend(account_id, region_name).delete_state_machine(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        self.backend.delete_state_machine(self.arn)

    def is_created(self) -> bool:
        return True


# --------------------------------------------------------------------------- in-place updates
# moto's models for these types have no update_from_cloudformation_json. On a stack
# update that changes one of them (a parameter change is enough: LogRetentionDays), moto's
# ResourceMap.update stores None for the resource: it vanishes from the stack, and every
# Ref to it resolves to nothing. These subclasses update in place what moto can, and keep
# the resource otherwise (the physical name, which other resources hold, stays the same).
def _moto_log_group() -> type[Any]:
    from moto.logs.models import LogGroup

    return LogGroup


def _moto_table() -> type[Any]:
    from moto.dynamodb.models.table import Table

    return Table


def _moto_permission() -> type[Any]:
    from moto.awslambda.models import Permission

    return Permission


class LogGroupInPlace(_moto_log_group()):  # type: ignore[misc]
    """``AWS::Logs::LogGroup``: moto's model plus in-place updates of
    ``RetentionInDays`` and ``Tags`` (a new ``LogGroupName`` replaces the group)."""

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        from moto.logs.models import logs_backends

        properties = cloudformation_json.get("Properties") or {}
        backend = logs_backends[account_id][region_name]
        name = properties.get("LogGroupName", original_resource.name)
        if name != original_resource.name:
            new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return new
        retention = properties.get("RetentionInDays")
        # moto annotates the value as str but stores it as given; the API returns a number.
        days = int(retention) if retention else None
        backend.put_retention_policy(original_resource.name, days)  # type: ignore[arg-type]
        tags = {t["Key"]: str(t["Value"]) for t in properties.get("Tags") or []}
        if tags:
            backend.tag_resource(original_resource.arn, tags)
        return original_resource


class TableInPlace(_moto_table()):  # type: ignore[misc]
    """``AWS::DynamoDB::Table``: moto's model plus in-place updates of ``BillingMode``,
    ``ProvisionedThroughput`` and ``DeletionProtectionEnabled``. Key schema and index
    changes are not applied (logged); TTL and point-in-time recovery are re-applied by
    ``localaws.cloudformation.stack`` after every deploy."""

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        properties = cloudformation_json.get("Properties") or {}
        backend = dynamodb_backends[account_id][region_name]
        name = properties.get("TableName", original_resource.name)
        if name != original_resource.name:
            new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            backend.delete_table(original_resource.name)
            return new
        if properties.get("KeySchema") not in (None, original_resource.schema):
            logger.warning("table %s: KeySchema change not applied locally", name)
        wanted = sorted(i["IndexName"] for i in properties.get("GlobalSecondaryIndexes") or [])
        present = sorted(i.name for i in original_resource.global_indexes)
        if wanted != present:
            logger.warning("table %s: GlobalSecondaryIndexes change not applied locally", name)
        backend.update_table(
            name=original_resource.name,
            attr_definitions=[],
            global_index=[],
            throughput=properties.get("ProvisionedThroughput") or {},
            billing_mode="PAY_PER_REQUEST" if properties.get("BillingMode") == "PAY_PER_REQUEST" else "PROVISIONED",
            stream_spec={},
            deletion_protection_enabled=properties.get("DeletionProtectionEnabled"),
            warm_throughput=None,
        )
        return original_resource


class PermissionInPlace(_moto_permission()):  # type: ignore[misc]
    """``AWS::Lambda::Permission``: moto's model, kept on update (every property of a
    permission requires replacement on AWS; the statement added at creation stays)."""

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        return original_resource


# --------------------------------------------------------------------------- custom resources
class CustomResourceFailed(RuntimeError):
    """A custom resource's provider answered FAILED, or did not answer at all."""


class _Responses:
    """Stands in for the pre-signed S3 ``ResponseURL``: an HTTP server on 127.0.0.1 (one per
    process, started on first use) that keeps the body of each PUT by request id. The
    provider sends its response with a real HTTP PUT, exactly as it would on AWS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: dict[str, bytes] = {}
        self._port = 0

    def url(self, request_id: str) -> str:
        with self._lock:
            if not self._port:
                self._port = self._serve()
        return f"http://127.0.0.1:{self._port}/cloudformation-response/{request_id}"

    def pop(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            body = self._bodies.pop(request_id, None)
        return None if body is None else dict(json.loads(body))

    def _serve(self) -> int:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        responses = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with responses._lock:
                    responses._bodies[self.path.rsplit("/", 1)[-1]] = body
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, name="cfn-custom-resource-responses", daemon=True).start()
        return int(server.server_address[1])


_responses = _Responses()


def _as_cfn_strings(value: Any) -> Any:
    """CloudFormation passes a custom resource's properties with every scalar as a string."""
    if isinstance(value, dict):
        return {k: _as_cfn_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_cfn_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class CustomResource(CloudFormationModel):
    """``AWS::CloudFormation::CustomResource`` and ``Custom::*`` with a Lambda ``ServiceToken``.

    moto's own model (``moto/cloudformation/custom_model.py``) sends Create only, from a
    thread, to a ``ResponseURL`` on moto's server (which nothing reaches in-process), never
    sends Update or Delete, and moto deletes a stack's resources in no particular order.
    Here every request (Create, Update, Delete) has the documented shape (``RequestType``,
    ``ResponseURL``, ``StackId``, ``RequestId``, ``ResourceType``, ``LogicalResourceId``,
    ``ResourceProperties``, plus ``PhysicalResourceId`` and ``OldResourceProperties`` where
    CloudFormation sends them), the function runs synchronously in this process
    (``localaws.awslambda.runtime``, whether or not it is installed into moto), and the response
    it PUTs to the in-process ``ResponseURL`` decides: ``SUCCESS`` (its ``Data`` serves
    ``Fn::GetAtt``) or ``FAILED`` (the operation fails with its ``Reason``). A function that
    answers nothing fails at once (AWS would wait for ``ServiceTimeout``). SNS service tokens
    are not supported.

    Deletion order: :func:`install` makes ``DeleteStack`` send the stack's custom resources
    their Delete first (newest first), before moto deletes anything; CloudFormation deletes a
    resource before what it depends on, and a custom resource depends on its function and
    whatever else it names. A Delete answered ``FAILED`` leaves the stack ``DELETE_FAILED``
    with everything in place, as CloudFormation does.
    """

    def __init__(self, account_id: str, region_name: str, *, logical_id: str, stack_id: str, resource_type: str,
                 properties: dict[str, Any], physical_id: str, data: dict[str, Any]) -> None:
        self.account_id, self.region_name = account_id, region_name
        self.logical_id, self.stack_id, self.resource_type = logical_id, stack_id, resource_type
        self.properties, self.physical_id, self.data = properties, physical_id, data
        self.deleted = False

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFormation::CustomResource"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True  # whatever the provider returns in Data

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name in self.data:
            return self.data[attribute_name]
        raise UnformattedGetAttTemplateException()

    @staticmethod
    def _request(account_id: str, region_name: str, request: dict[str, Any]) -> dict[str, Any]:
        """Invoke the provider with ``request`` (ResponseURL and RequestId added); its response."""
        import uuid

        from moto.awslambda.utils import get_backend

        from localaws.awslambda import runtime as lambda_runtime

        what = f"{request['RequestType']} of {request['LogicalResourceId']} ({request['ResourceType']})"
        token = str(request["ResourceProperties"].get("ServiceToken", ""))
        if ":lambda:" not in token and ":function:" not in token:
            raise CustomResourceFailed(f"{what}: local mode supports Lambda service tokens only, not {token!r}")
        fn = get_backend(account_id, region_name).get_function(token)
        request_id = str(uuid.uuid4())
        event = {**request, "ServiceToken": token, "RequestId": request_id, "ResponseURL": _responses.url(request_id)}
        # The same path as every local invocation, called directly so it runs even where the
        # handler tests have uninstalled the patch.
        payload, errored, _ = lambda_runtime.invoke_here(fn, event)
        response = _responses.pop(request_id)
        if response is None:
            detail = f": the function failed: {payload}" if errored else ""
            raise CustomResourceFailed(f"{what}: no response was sent to the ResponseURL{detail}")
        if response.get("Status") != "SUCCESS":
            raise CustomResourceFailed(f"{what} failed: {response.get('Reason') or 'no reason given'}")
        return response

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CustomResource:
        properties = _as_cfn_strings(cloudformation_json.get("Properties") or {})
        request = {"RequestType": "Create", "StackId": kwargs["StackId"], "LogicalResourceId": kwargs["LogicalId"],
                   "ResourceType": kwargs["ResourceType"], "ResourceProperties": properties}
        response = cls._request(account_id, region_name, request)
        return cls(account_id, region_name, logical_id=kwargs["LogicalId"], stack_id=kwargs["StackId"],
                   resource_type=kwargs["ResourceType"], properties=properties,
                   physical_id=str(response.get("PhysicalResourceId") or resource_name),
                   data=dict(response.get("Data") or {}))

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: CustomResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> CustomResource:
        properties = _as_cfn_strings(cloudformation_json.get("Properties") or {})
        if properties == original_resource.properties:
            return original_resource  # CloudFormation sends no Update when nothing changed
        old = original_resource
        request = {"RequestType": "Update", "StackId": old.stack_id, "LogicalResourceId": old.logical_id,
                   "ResourceType": old.resource_type, "PhysicalResourceId": old.physical_id,
                   "ResourceProperties": properties, "OldResourceProperties": old.properties}
        response = cls._request(account_id, region_name, request)
        new = cls(account_id, region_name, logical_id=old.logical_id, stack_id=old.stack_id,
                  resource_type=old.resource_type, properties=properties,
                  physical_id=str(response.get("PhysicalResourceId") or old.physical_id),
                  data=dict(response.get("Data") or {}))
        if new.physical_id != old.physical_id:  # a replacement: the old one gets its Delete
            old.delete(account_id, region_name)
        return new

    def delete(self, account_id: str, region_name: str) -> None:
        if self.deleted:
            return
        self._request(account_id, region_name, {
            "RequestType": "Delete", "StackId": self.stack_id, "LogicalResourceId": self.logical_id,
            "ResourceType": self.resource_type, "PhysicalResourceId": self.physical_id,
            "ResourceProperties": self.properties,
        })
        self.deleted = True

    def is_created(self) -> bool:
        return True


def _custom_resources_first(original: Any) -> Any:
    """``CloudFormationBackend.delete_stack``, preceded by the Delete of the stack's custom
    resources (see :class:`CustomResource`); one that fails leaves the stack DELETE_FAILED."""

    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        for stack in [s for s in self.stacks.values() if name_or_stack_id in (s.stack_id, s.name)]:
            parsed = getattr(stack.resource_map, "_parsed_resources", {})
            custom = [r for r in parsed.values() if isinstance(r, CustomResource) and not r.deleted]
            if not custom:
                continue
            stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
            for resource in reversed(custom):
                try:
                    resource.delete(resource.account_id, resource.region_name)
                except CustomResourceFailed as failure:
                    logger.warning("stack %s: %s", stack.name, failure)
                    stack.status = "DELETE_FAILED"
                    stack._add_stack_event("DELETE_FAILED", resource_status_reason=str(failure))
                    return
        original(self, name_or_stack_id)

    return delete_stack


def _custom_types(original: Any) -> Any:
    """``parsing.resource_class_from_type`` with ``Custom::*`` mapped to :class:`CustomResource`
    (moto hard-codes its own model for that prefix)."""

    def resource_class_from_type(resource_type: str) -> Any:
        if resource_type.startswith("Custom::"):
            return CustomResource
        return original(resource_type)

    return resource_class_from_type


def _patch(patches: Patches) -> None:
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend

    patches.set(parsing, "resource_class_from_type", _custom_types(parsing.resource_class_from_type))
    patches.set(CloudFormationBackend, "delete_stack", _custom_resources_first(CloudFormationBackend.delete_stack))


def is_supported(resource_type: str) -> bool:
    """Whether moto's CloudFormation (with these models) can create ``resource_type``."""
    return resource_type.startswith("Custom::") or resource_type in supported_types()


MODELS: tuple[type[CloudFormationModel], ...] = (
    ModelPackageGroup,
    BucketPolicy,
    SnsSubscription,
    LambdaLayerVersion,
    SchedulerSchedule,
    StepFunctionsStateMachine,
    LogGroupInPlace,
    TableInPlace,
    PermissionInPlace,
    CloudWatchAlarm,
    CustomResource,
)


def install() -> None:
    """Make moto's CloudFormation use the models above. Idempotent.

    Defining the classes registers them as ``CloudFormationModel`` subclasses; moto's
    model list and maps are ``lru_cache``d, so they are cleared, rebuilt, and our models
    pinned in the type map (this replaces moto's own ``AWS::Lambda::LayerVersion``).
    ``parsing.resource_class_from_type`` and ``CloudFormationBackend.delete_stack`` are
    patched for custom resources.
    """
    from moto.cloudformation import parsing

    PATCHES.apply(_patch)
    model_map = parsing.get_model_map()
    if all(model_map.get(m.cloudformation_type()) is m for m in MODELS):
        return
    _clear_model_caches()
    model_map = parsing.get_model_map()
    name_map = parsing.get_name_type_map()
    for model in MODELS:
        native = model_map.get(model.cloudformation_type())
        if native is not None and native is not model:
            logger.debug("replacing moto's model %s for %s", native, model.cloudformation_type())
        model_map[model.cloudformation_type()] = model
        name_map[model.cloudformation_type()] = model.cloudformation_name_type()


#: the name the stack boot uses
register = install


def uninstall() -> None:
    """Undo the patches and let moto rebuild its model maps. The model classes stay defined
    (moto finds every ``CloudFormationModel`` subclass), so types moto lacks stay known."""
    if PATCHES.restore():
        _clear_model_caches()


installed = PATCHES.active


def _clear_model_caches() -> None:
    from moto.cloudformation import parsing

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


def supported_types() -> frozenset[str]:
    """Every resource type moto's CloudFormation can create (after :func:`install`)."""
    from moto.cloudformation import parsing

    install()
    return frozenset(parsing.get_model_map())
