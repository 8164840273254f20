"""DescribeModel without the empty members AWS leaves out.

Gap in moto 5.2.5: ``Model.response_object`` (moto/sagemaker/models.py) answers
``DescribeModel`` with ``"VpcConfig": {}`` (and ``"Containers": []``) for a model created
without them. AWS omits a member that was not set. The SageMaker SDK v3 reads the answer
into typed shapes (``sagemaker.core.resources.Model.get``), where a present ``VpcConfig``
must hold ``SecurityGroupIds`` and ``Subnets``: ``ModelBuilder.build()`` fails on moto's
empty one. This extension drops the empty ``VpcConfig`` and ``Containers`` members.

Patched: ``moto.sagemaker.models.Model.response_object`` (a property, replaced).
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


def install() -> None:
    """Replace ``Model.response_object``. Idempotent."""
    PATCHES.apply(_patch)


uninstall = PATCHES.restore
installed = PATCHES.active
