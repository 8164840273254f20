"""The `autoloop` command and the tools that work against any AWS, local or real.

`publish` (ML code and model configs to the artifacts bucket), `report` (the lifecycle
report of a run), `datagen` (the seeded churn data generator) and `executions` (following
Step Functions runs) need only boto3 and the domain package. `autoloop local ...` and the
demo (`demo/`) use the local AWS (`localaws`), imported only when such a command runs, so
this package installs and works without the emulator.
"""
