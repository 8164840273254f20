"""Autoloop's domain package: pure, typed logic shared by the Lambda handlers.

Pure modules (no AWS): ``naming``, ``validation``, ``jobs``, ``gate``, ``registry``,
``events``, ``config``, ``errors``. AWS access lives in ``adapters`` (lazy boto3 clients,
error translation). ``steps`` has one function per Lambda, composing the two.
"""

__version__ = "0.1.0"
