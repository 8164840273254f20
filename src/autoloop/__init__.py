"""Autoloop's domain package: the logic behind the Lambda handlers (shipped as a Lambda layer).

Each handler in ``functions/<name>/app.py`` parses nothing itself: it calls one function of a
pipeline module below, which parses its event or payload with the typed models. The modules,
in order: each imports only modules listed before it (``MODULES``), and no pipeline module
imports another.

Foundations
    ``errors``          named errors (Step Functions Retry/Catch match on the class name)
    ``observability``   Powertools logger, tracer and metrics
    ``naming``          run ids, job names (training and batch), months, execution ARNs
    ``adapters``        lazy boto3 clients, AWS errors as named ones, small S3 helpers
    ``lifecycle``       the stack's teardown marker (a stack being deleted deploys nothing)
Pure domain (no AWS calls, except ``config.load_model_config``)
    ``jobs``            SageMaker job requests and results
    ``monitoring``      monitoring requests, both backends (baselines, jobs, schedules)
    ``state``           the state machines' payloads, as pydantic models
    ``events``          the EventBridge events the handlers take (Powertools ``EventBridgeModel``)
    ``gate``            the quality gate's verdict (challenger vs threshold and champion, same rows)
    ``config``          model configs and handler settings
    ``validation``      the CSV checks made before any job starts
Model Registry and shared AWS machinery
    ``registry``        package requests and checks, the latest Approved package, the champion
    ``deploy``          deployment planning and endpoint requests (pure)
    ``batch``           the monthly batch transform's months, layout, requests, policy (pure)
    ``drift``           monitoring reports, drift events and the retrain policy (pure)
    ``tracking``        MLflow experiment tracking of the lifecycle, over MLflow's REST API
    ``tasks``           the task-token waits: launch a job for a task, complete the task from a
                        job or endpoint state change (the callback), reconcile after a timeout
    ``retrain_data``    a drift retrain's dataset: the fresh upload plus the labelled rows, written once
Pipelines (one per state machine or trigger)
    ``training_steps``, ``deploy_steps``, ``batch_steps``, ``drift_steps``, ``monitoring_steps``,
    ``run_slots``, ``teardown``

``tests/unit/test_domain_imports.py`` holds the package to this order;
``tests/infra/test_architecture.py`` to no private (``_name``) use across modules and to
importing no other project package.
"""

__version__ = "0.1.0"

MODULES = (
    "errors", "observability", "naming", "adapters", "lifecycle",
    "jobs", "monitoring", "state", "events", "gate", "config", "validation",
    "registry", "deploy", "batch", "drift", "tracking", "tasks", "retrain_data",
)
PIPELINES = ("training_steps", "deploy_steps", "batch_steps", "drift_steps", "monitoring_steps", "run_slots",
             "teardown")
