"""DescribeModel without the empty members AWS leaves out; a model package group created once.

Gap in moto 5.2.5: ``Model.response_object`` (moto/sagemaker/models.py) answers
``DescribeModel`` with ``"VpcConfig": {}`` (and ``"Containers": []``) for a model created
without them. AWS omits a member that was not set. The SageMaker SDK v3 reads the answer
into typed shapes (``sagemaker.core.resources.Model.get``), where a present ``VpcConfig``
must hold ``SecurityGroupIds`` and ``Subnets``: ``ModelBuilder.build()`` fails on moto's
empty one. This extension drops the empty ``VpcConfig`` and ``Containers`` members.

Gap in moto 5.2.5: ``SageMakerModelBackend.create_model_package_group`` replaces a group
of the same name (its creation time, description and tags) instead of refusing it. AWS
answers ``ValidationException: Model Package Group already exists: <arn>``. Autoloop creates
a model's group at its first registration, and two first registrations may race: the loser
must see AWS's error (which it treats as success), and the winner's group must stay as it is.

Patched: ``moto.sagemaker.models.Model.response_object`` (a property, replaced) and
``moto.sagemaker.models.SageMakerModelBackend.create_model_package_group``.
"""

from __future__ import annotations

from typing import Any

from localaws.patching import Patches

PATCHES = Patches("sagemaker_models")
OMITTED_WHEN_EMPTY = ("VpcConfig", "Containers")


def _patch(patches: Patches) -> None:
    from moto.sagemaker.models import Model

    def response_object(self: Any) -> dict[str, Any]:
        response = dict(PATCHES.original(Model, "response_object").fget(self))
        for key in OMITTED_WHEN_EMPTY:
            if key in response and not response[key]:
                del response[key]
        return response

    patches.set(Model, "response_object", property(response_object))

    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend

    def create_model_package_group(self: Any, model_package_group_name: str, *args: Any, **kwargs: Any) -> Any:
        existing = self.model_package_groups.get(model_package_group_name)
        if existing is not None:
            raise ValidationError(f"Model Package Group already exists: {existing.arn}")
        original = PATCHES.original(SageMakerModelBackend, "create_model_package_group")
        return original(self, model_package_group_name, *args, **kwargs)

    patches.set(SageMakerModelBackend, "create_model_package_group", create_model_package_group)


def install() -> None:
    """Replace ``Model.response_object`` and ``create_model_package_group``. Idempotent."""
    PATCHES.apply(_patch)


uninstall = PATCHES.restore
installed = PATCHES.active
