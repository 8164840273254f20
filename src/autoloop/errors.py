"""Named errors. Step Functions Retry/Catch match on the class name, so each is a class.

Every error carries a message that says what was wrong and a hint that says what to do.
"""

from __future__ import annotations


class AutoloopError(Exception):
    """Base class. ``str(err)`` is the message followed by the hint."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        if hint is not None:
            self.hint = hint
        super().__init__(f"{message} {self.hint}".strip())


# -- events and configuration ---------------------------------------------------------
class InvalidEvent(AutoloopError):
    hint = "The event does not have the documented shape; see events/ for samples."


class ObjectOutsideIncoming(AutoloopError):
    hint = "Upload training data under incoming/<model>/ in the data bucket."


class UnknownModel(AutoloopError):
    hint = "Add models/<model>/ (config.json and train.py) and run `autoloop publish`, or fix the key's model folder."


class ConfigError(AutoloopError):
    hint = "Check the function's environment in template.yaml."


class InvalidModelConfig(AutoloopError):
    hint = "Fix models/<model>/config.json and run `autoloop publish` again."


# -- input data (raised before any job starts) -----------------------------------------
class InvalidInputData(AutoloopError):
    """Base for data problems found by validation. Nothing was launched; the object is kept."""

    hint = "Fix the file and upload it again; the original object is left untouched."


class EmptyDataset(InvalidInputData):
    pass


class NotCsv(InvalidInputData):
    pass


class SchemaMismatch(InvalidInputData):
    pass


class LabelColumnMisplaced(InvalidInputData):
    pass


class AllNanColumn(InvalidInputData):
    pass


class DatasetTooLarge(InvalidInputData):
    pass


class TooFewRows(InvalidInputData):
    pass


# -- jobs ---------------------------------------------------------------------------------
class MlCodeMissing(AutoloopError):
    hint = "Run `autoloop publish --stack-name <stack>` to upload ml/ and models/ to the artifacts bucket."


class JobFailed(AutoloopError):
    hint = ("The reason is above; the job's output is in CloudWatch Logs, group /aws/sagemaker/TrainingJobs "
            "(or ProcessingJobs, TransformJobs), streams named after the job: "
            "`aws logs filter-log-events --log-group-name /aws/sagemaker/TrainingJobs "
            "--log-stream-name-prefix <job-name>/`.")


class JobStillRunning(AutoloopError):
    hint = "The pipeline will describe the job again later."


class JobNotFound(AutoloopError):
    hint = "The job was never created; check the launch step's logs."


class EvaluationMissing(AutoloopError):
    hint = "The evaluation job did not write evaluation.json with the configured metric."


# -- AWS ----------------------------------------------------------------------------------
class AwsThrottled(AutoloopError):
    hint = "Retried with backoff by the state machine; raise the service quota if it persists."


class TransientAwsError(AutoloopError):
    hint = "Retried with backoff by the state machine."


class AwsCallFailed(AutoloopError):
    hint = "See the AWS error code above; usually a permission or a missing resource."


class InvalidLabels(InvalidInputData):
    pass


class NonNumericValue(InvalidInputData):
    pass


class ValueOutOfRange(NonNumericValue):
    """A numeric cell that parses but can't be trained on: infinite, or so large that the
    preprocessing's mean and variance overflow. A NonNumericValue, so catching that still works."""

    hint = (
        "Replace the value with a real measurement, or leave the cell empty (missing values are "
        "imputed), then upload the file again; the original object is left untouched."
    )


class ChampionNotComparable(AutoloopError):
    """The current champion cannot be scored on the challenger's held-out rows."""

    hint = (
        "Champion and challenger are compared on the same rows, so the champion's model data must "
        "be an Autoloop training artifact. Reject that package in the Model Registry (the previous "
        "Approved one becomes the champion), then upload the data again."
    )


class PackageNotDeployable(AutoloopError):
    hint = "Register models through Autoloop (or attach metrics and a single container), then approve again."


class ServerlessNotPossible(AutoloopError):
    """``ServerlessMemoryMB`` asks for something SageMaker serverless inference cannot do."""

    hint = ("Set ServerlessMemoryMB=0 to keep serving from instances (EndpointInstanceType); "
            "see the README, \"Serverless endpoints\", for what serverless gives up.")


class EndpointBusy(AutoloopError):
    hint = "Another deployment of this endpoint is in progress; this one is retried after it."


class DeploymentFailed(AutoloopError):
    hint = "The endpoint keeps serving the previous model. See the endpoint's FailureReason."


class DeploymentRolledBack(AutoloopError):
    hint = "A rollback alarm fired during the bake; the previous model is still serving."


class EndpointStillUpdating(AutoloopError):
    hint = "The pipeline will describe the endpoint again later."


class InvalidViolationsReport(AutoloopError):
    hint = (
        "Read the monitoring execution's logs and its constraint_violations.json; nothing was "
        "retrained. The next monitoring run writes a new report."
    )


# -- monthly batch transform ----------------------------------------------------------------
class NoApprovedModel(AutoloopError):
    hint = (
        "Nothing was scored. Approve a model package in the group (or let a training run register "
        "one), then run the month again (events/batch_transform_manual.json, or locally "
        "`autoloop local transform --month YYYY-MM`)."
    )


class NoBatchInput(AutoloopError):
    hint = (
        "Nothing was scored. Upload the month's CSVs under batch/<model>/<YYYY-MM>/ in the data bucket, "
        "then run the month again."
    )


class BatchSchemaMismatch(AutoloopError):
    hint = (
        "Nothing was scored. Each file needs a header with the model's feature columns and its "
        "batch.id_columns (any order; the label column is optional and ignored). Fix the file and run the month again."
    )


class TooManyMalformedRows(AutoloopError):
    hint = (
        "Nothing was scored. The malformed rows are listed (file, line, reason) in the run's "
        "prepare/malformed/ output; fix them, or raise batch.max_malformed_fraction in the model config."
    )


class BatchAttemptsExhausted(AutoloopError):
    hint = "Read the failure reasons of the month's earlier jobs; fix the cause before running the month again."


class BatchOutputMissing(AutoloopError):
    hint = "The transform job reported success but wrote no output; read its logs, then run the month again."


# -- retrain datasets (fresh labels) ---------------------------------------------------------
class RetrainDataMismatch(AutoloopError):
    """A part of a retrain dataset (the newest upload or a labelled file) is not in the model's
    format. Nothing was written and nothing was retrained; no source object is changed."""

    hint = (
        "Nothing was written or retrained, and the file is left untouched. Every part of a retrain "
        "dataset needs the model config's columns, label first, as its header line: re-export the file "
        "named with that header (labelled files are written by the monitoring job from the captured "
        "inputs and groundtruth/<model>/; uploads go under incoming/<model>/). If the model's columns "
        "changed, upload a full dataset with the new columns under incoming/<model>/ instead."
    )


class NoRetrainData(AutoloopError):
    """There is nothing to retrain on, or a source named for the dataset no longer exists."""

    hint = (
        "Nothing was written or retrained. Upload fresh training data under incoming/<model>/, or put "
        "ground-truth labels for the captured traffic under groundtruth/<model>/yyyy/mm/dd/hh/ before "
        "the next monitoring run."
    )


class RetrainDataTooLarge(AutoloopError):
    hint = (
        "Nothing was written or retrained. Labelled rows are read into the drift handler's memory; "
        "train on a large labelled set by uploading it as a full dataset under incoming/<model>/ instead."
    )
