"""The `autoloop` command line.

    autoloop local demo [--model M] [--data F]   boot the local AWS from template.yaml and run the lifecycle
    autoloop local serve [--tracking]   run the local AWS as a server (other commands can use it)
    autoloop local put FILE --model M [--wait]   upload a file for model M (and follow its run)
    autoloop local runs [--model M] [--path]     list runs with how each ended
    autoloop local fire-schedule NAME   fire a schedule (or schedule rule) now
    autoloop local transform --month YYYY-MM   score one month with the batch transform now
    autoloop local runtimes [--build] [--model M]   list/build the venvs like the images that jobs run on
    autoloop check MODEL [--data CSV] [--rows N] [--runtime R]   run the model's steps on a sample, offline
    autoloop publish --stack-name S     upload ml/ and model configs to a deployed stack (AWS)
    autoloop smoke --stack-name S --model M [--data F]   upload a sample to a deployed stack, judge its run
    autoloop gen-data --rows N --out F [--model churn|price|plan|fraud]  write generated data
    autoloop report --execution-arn ARN [--out F]   the HTML lifecycle report of one execution
    autoloop report --latest [--stack-name S]        ... of the stack's newest TrainingPipeline run
    autoloop ui [--port N]             browse the local MLflow store (the demo's runs) with `mlflow ui`
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from autoloop_cli.console import Console

STATE_FILE = Path(os.environ.get("AUTOLOOP_LOCAL_HOME", ".autoloop")) / "server.json"


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _use_runtime(args: argparse.Namespace, default: str) -> None:
    """--runtime: the Python the local jobs run on (localaws.sagemaker.runtimes), for this process;
    without it, $AUTOLOOP_LOCAL_RUNTIME, else ``default``."""
    from localaws.sagemaker import runtimes

    os.environ[runtimes.MODE_VAR] = args.runtime or os.environ.get(runtimes.MODE_VAR) or default


def cmd_demo(args: argparse.Namespace) -> int:
    from autoloop_cli.demo import lifecycle as demo

    _use_runtime(args, "auto")
    try:
        result = demo.run(rows=args.rows, seed=args.seed, timeout=args.timeout, loop=not args.train_only,
                          report=Path(args.report) if args.report else None, model=args.model,
                          data=Path(args.data) if args.data else None, tracking=not args.no_tracking)
    except demo.DemoError as exc:
        return _fail(str(exc))
    return 0 if result.status == "SUCCEEDED" else 1


def cmd_ui(args: argparse.Namespace) -> int:
    """``mlflow ui`` on the local store (the demo's runs); it serves until Ctrl-C."""
    import shlex
    import subprocess

    from autoloop_cli import mlflow_server

    home = STATE_FILE.parent
    database = mlflow_server.store_dir(home) / "mlflow.db"
    if not database.exists():
        return _fail(f"no local MLflow store at {database}: run `autoloop local demo` first (tracking is on "
                     "unless --no-tracking)")
    command = shlex.split(mlflow_server.ui_command(home)) + ["--host", "127.0.0.1", "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C stops it): {shlex.join(command)}")
    try:
        return subprocess.call([sys.executable, "-m", *command])
    except KeyboardInterrupt:
        return 0


def _server_state() -> dict[str, Any]:
    if not STATE_FILE.exists():
        raise SystemExit(_fail(f"no local AWS is running ({STATE_FILE} not found). Start one: autoloop local serve"))
    state = json.loads(STATE_FILE.read_text())
    os.environ.setdefault("AWS_ENDPOINT_URL", state["endpoint_url"])
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    return state


TIME_SCALE_HELP = (
    "multiply the local AWS's waits by this factor: Step Functions Wait states and Retry "
    "intervals, the endpoint deployment waits (blue/green bake, termination wait, deployment "
    "timeout), and schedule periods (schedules run on a clock 1/FACTOR times as fast: at 0.01 "
    "an hourly monitoring schedule fires every 36 s, the monthly batch transform every 7.2 h). "
    "Task, job and invocation timeouts are not scaled. Default 1 (AWS's times)."
)


def _serve_logging(home: Path) -> Path:
    """moto's and Werkzeug's own output (parser dumps, request tracebacks) goes to a file,
    so the console shows the runs."""
    path = home / "logs" / "server.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("moto", "werkzeug", "localaws", "botocore", "samtranslator"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
    return path


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from autoloop.adapters import client
    from autoloop_cli import publish, serve_console
    from localaws import observe, server
    from localaws.cloudformation import stack
    from localaws.scheduler.clock import ScheduleClock

    _use_runtime(args, "auto")
    pairs = [p.split("=", 1) for p in args.parameter or []]
    parameters = {pair[0]: pair[1] for pair in pairs if len(pair) == 2 and pair[0]}
    if len(parameters) != len(pairs):
        return _fail("--parameter takes KEY=VALUE, a template parameter and its value "
                     "(for example --parameter MonitoringBackend=model-monitor)")
    if not args.time_scale > 0:
        return _fail(f"--time-scale must be a number > 0, got {args.time_scale} "
                     "(e.g. 0.01 runs an hour of waits and schedules in 36 s)")
    try:
        server.check_port(args.port)
    except server.PortInUse:
        return _fail(f"port {args.port} is in use (another `autoloop local serve`?). Stop that one, "
                     "or choose another port: --port N (0 picks a free one).")
    home = STATE_FILE.parent
    log_file = _serve_logging(home)
    console = Console(stages=2)
    printing = threading.Lock()

    def say(line: str | None) -> None:
        if line:
            with printing:
                console.say(line)

    server.set_time_scale(args.time_scale)
    tracking = None
    if args.tracking:
        from autoloop_cli.mlflow_server import MlflowServer

        tracking = MlflowServer(home, fresh=True).start()  # boots while the local AWS does
        parameters.setdefault("MlflowTrackingUri", tracking.url)
    try:
        local = server.start(port=args.port)
    except server.PortInUse:
        if tracking:
            tracking.stop()
        return _fail(f"port {args.port} is in use. Choose another: --port N (0 picks a free one).")
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated serve cleans up as Ctrl-C does
    stop_observing = [
        observe.on_execution_event(lambda record, machine: say(serve_console.execution_line(record, machine))),
        observe.on_notification(lambda note: say(serve_console.notification_line(note))),
    ]
    clock: ScheduleClock | None = None
    try:
        with console.stage(f"Deploying template.yaml into the local AWS at {local.endpoint_url}"):
            deployed = stack.deploy(Path(args.template), stack_name=args.stack_name, parameters=parameters)
            publish.publish(client("s3"), deployed.outputs["ArtifactsBucketName"])
            if tracking:
                tracking.wait()
        clock = ScheduleClock(args.time_scale, on_fire=lambda f: say(serve_console.schedule_line(
            f.kind, f.name, f.scheduled_time, f.result, f.error))).start()
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps({"endpoint_url": local.endpoint_url, "stack": args.stack_name,
                                          "time_scale": args.time_scale, "outputs": deployed.outputs}, indent=2))
        say(f"Local AWS ready. In another shell:\n  export AWS_ENDPOINT_URL={local.endpoint_url} "
            "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1")
        for key, value in deployed.outputs.items():
            say(f"  {key} = {value}")
        if tracking:
            say(f"MLflow tracking server at {tracking.url} (the stack's MlflowTrackingUri; store "
                f"{tracking.store_uri}): open it in a browser, or `autoloop ui` once this server has stopped.")
        if args.time_scale != 1:
            say(f"Time scale {args.time_scale:g}: waits take {args.time_scale:g} of their time, "
                f"schedules run {1 / args.time_scale:g} times as often.")
        say(f"Runs, notifications and schedules are shown below; the server's own log is {log_file}. "
            "Ctrl-C stops it.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        for remove in stop_observing:
            remove()
        if clock is not None:
            clock.stop()
        STATE_FILE.unlink(missing_ok=True)
        local.stop()
        if tracking:
            tracking.stop()
        server.set_time_scale(None)


def cmd_put(args: argparse.Namespace) -> int:
    from autoloop.adapters import client
    from autoloop.naming import execution_arn, model_from_key, run_id
    from autoloop_cli.publish import published_models

    state = _server_state()
    path = Path(args.file)
    if not path.is_file():
        return _fail(f"{path} is not a file")
    outputs = state["outputs"]
    bucket = outputs["DataBucketName"]
    published = published_models(client("s3"), outputs["ArtifactsBucketName"])
    model = model_from_key(args.key) if args.key else args.model
    if args.key and args.model and model != args.model:
        return _fail(f"--key {args.key} is under model {model!r}, not --model {args.model!r}")
    if model is None and args.key:
        if args.wait:
            return _fail(f"--key {args.key} is not under incoming/<model>/, so it starts no run to wait for")
    elif model is None:
        return _fail(f"say which model the file is for: --model <name> (published: {', '.join(published) or 'none'})")
    elif model not in published:
        return _fail(f"model {model!r} has no published config (published: {', '.join(published) or 'none'}); "
                     f"add models/{model}/ (config.json, train.py) and publish it")
    key = args.key or f"incoming/{model}/{path.name}"
    response = client("s3").put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    print(f"uploaded s3://{bucket}/{key} (version {response.get('VersionId')})")
    if not args.wait or model is None:
        return 0
    version = response.get("VersionId") or response["ETag"].strip('"')
    arn = execution_arn(outputs["TrainingPipelineArn"], run_id(model, bucket, key, version))
    return _follow_run(arn, args.timeout)


def _follow_run(arn: str, timeout: float) -> int:
    """Print each state of the run as it is entered, then its outcome in one line."""
    from autoloop.adapters import client
    from autoloop_cli import executions

    try:
        description = executions.follow_run(client("stepfunctions"), arn, timeout, say=print)
    except TimeoutError as exc:
        return _fail(str(exc))
    print(f"{description['status']}: {executions.outcome(description)}")
    return 0 if description["status"] == "SUCCEEDED" else 1


def cmd_executions(args: argparse.Namespace) -> int:
    from autoloop.adapters import client
    from autoloop.naming import parse_run_id
    from autoloop_cli import executions

    state = _server_state()
    sfn = client("stepfunctions")
    found = []
    for execution in executions.executions(sfn, state["outputs"]["TrainingPipelineArn"]):
        try:
            model = parse_run_id(execution["name"])[0]
        except ValueError:
            model = None
        if args.model is None or model == args.model:
            found.append(execution)
    if not found:
        print("no runs yet" + (f" of model {args.model}" if args.model else ""))
    for execution in found:
        description = sfn.describe_execution(executionArn=execution["executionArn"])
        print(f"{execution['name']}  {execution['status']}  {execution['startDate']:%Y-%m-%d %H:%M:%S}  "
              f"{executions.outcome(description)}")
        if args.path:
            events = executions.history(sfn, execution["executionArn"])
            print("  " + " -> ".join(s.name for s in executions.path(events)))
    return 0


def cmd_fire_schedule(args: argparse.Namespace) -> int:
    """An EventBridge Scheduler schedule (e.g. the monthly batch transform's) or a schedule rule."""
    from localaws.events import delivery as eventbridge
    from localaws.scheduler import schedules as scheduler

    _server_state()
    if scheduler.get(args.rule, args.group) is not None:
        fired = scheduler.fire(args.rule, args.time, group=args.group)
        if fired is None:
            print(f"schedule {args.rule} is DISABLED: not fired")
            return 1
        print(f"fired schedule {fired.schedule} -> {fired.target}")
        if fired.execution_arn:
            print(f"  execution {fired.execution_arn}")
        return 0
    try:
        delivered = eventbridge.fire_schedule(args.rule, args.time)
    except KeyError:
        return _fail(f"no schedule or schedule rule named {args.rule}")
    print(f"fired {args.rule} ({delivered} target(s))")
    return 0


def cmd_transform(args: argparse.Namespace) -> int:
    """Score one month now: start BatchTransform with a manual request and follow it."""
    from autoloop.adapters import client
    from autoloop_cli.demo import batch as batch_demo

    state = _server_state()
    arn = state["outputs"]["BatchTransformArn"]
    run = batch_demo.start_month(arn, args.model, args.month, force=args.force)
    print(f"started {run.rsplit(':', 1)[-1]} for {args.model} {args.month}")
    if args.no_wait:
        return 0
    summary = batch_demo.follow_month(client("stepfunctions"), run, timeout=args.timeout,
                                      on_step=lambda name: print(f"  -> {name}"))
    print(summary.text())
    return 0 if summary.status == "SUCCEEDED" else 1


def cmd_publish(args: argparse.Namespace) -> int:
    import boto3

    from autoloop_cli import publish

    folders = publish.model_folders()  # a bad model folder fails here, before any AWS call
    if args.check:
        from autoloop_cli import check

        _use_runtime(args, "image")

        for name, folder in folders.items():
            if not (folder.path / check.SAMPLE_FILE).is_file():
                print(f"autoloop check {name}: skipped (no models/{name}/{check.SAMPLE_FILE})")
                continue
            print(f"autoloop check {name}")
            try:
                check.run_check(name)
            except check.CheckFailed as exc:
                return _fail(f"autoloop check {name}: {exc.message} Nothing was published.")
    session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
    # and a framework image the SDK cannot resolve, still before any AWS call
    prepared = publish.prepare(session.region_name, folders=folders)
    stack = session.client("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    publish.check_custom_images(folders, {p["ParameterKey"]: p.get("ParameterValue", "")
                                          for p in stack.get("Parameters", [])})
    result = publish.publish(session.client("s3"), outputs["ArtifactsBucketName"], prepared=prepared)
    print(f"published {len(result.scripts)} scripts and models {', '.join(result.models)} to s3://{result.bucket}")
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    """Exit 0: the run registered a package (or the gate kept the champion); 1: it ended otherwise,
    or not in time (the last line says why); 2: it could not start (one line on stderr)."""
    import boto3

    from autoloop_cli import smoke

    if not args.timeout > 0 or not args.poll > 0:
        return _fail("--timeout and --poll are seconds, > 0")
    try:
        data = smoke.sample_path(args.model, args.data)
        session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
        result = smoke.run(session, args.stack_name, args.model, data, args.timeout, args.poll,
                           say=lambda line: print(line, flush=True))
    except smoke.SmokeError as exc:
        return _fail(str(exc))
    print(f"smoke {'passed' if result.passed else 'FAILED'}: {result.line}")
    return 0 if result.passed else 1


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0: every step ran and the metric reached the threshold; 1: every step ran but the
    sample's metric missed it; 2: a step failed (one line on stderr names it and why)."""
    from autoloop_cli import check

    _use_runtime(args, "image")
    print(f"autoloop check {args.model}")
    try:
        result = check.run_check(args.model, args.data, args.rows)
    except check.CheckFailed as exc:
        print(f"autoloop check {args.model}: {exc.message}", file=sys.stderr)
        return 2
    return 0 if result.verdict.passed else 1


def cmd_runtimes(args: argparse.Namespace) -> int:
    """List (and with --build, build) the local runtimes the models' jobs ask for."""
    from autoloop_cli import check
    from localaws.sagemaker import runtimes

    needs = [need for need in check.runtime_needs(args.region) if not args.model or need[0] in args.model]
    if args.model and not needs:
        return _fail(f"no model named {', '.join(args.model)} under models/")
    seen: set[tuple[str, Path | None]] = set()
    for model, image, requirements in needs:
        runtime = runtimes.image_runtime(image)
        if runtime is None:
            print(f"{model:<10} {image}: no local runtime (jobs run on the project's venv)")
            continue
        if (runtime.image, requirements) in seen:
            continue
        seen.add((runtime.image, requirements))
        if args.build:
            try:
                runtimes.build(runtime, requirements)
            except runtimes.RuntimeUnavailable as exc:
                return _fail(f"{exc}" + (f" (build log: {exc.log})" if exc.log else ""))
        folder = runtimes.built(runtime, requirements)
        extra = f" + {requirements}" if requirements else ""
        print(f"{model:<10} {runtime.image}{extra} (Python {runtime.python}): "
              + (f"built, {folder}" if folder else "not built (--build builds it)"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Works against whatever boto3 is configured for: AWS_ENDPOINT_URL (a local AWS; a running
    `autoloop local serve` is found by itself), or a region and credentials (AWS)."""
    from autoloop_cli import report

    if "AWS_ENDPOINT_URL" not in os.environ and STATE_FILE.exists():
        _server_state()
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = args.region
    if bool(args.execution_arn) == bool(args.latest):
        return _fail("give --execution-arn ARN, or --latest (with --stack-name) for the newest TrainingPipeline run")
    try:
        arn = args.execution_arn or report.latest_execution(_client_factory(), args.stack_name or "autoloop-local")
        path = report.write(arn, args.out, stack_name=args.stack_name)
    except report.ReportError as exc:
        return _fail(str(exc))
    except Exception as exc:  # no endpoint, no credentials: say which
        if type(exc).__name__ in ("EndpointConnectionError", "NoCredentialsError", "NoRegionError"):
            return _fail(f"{exc}. Start a local AWS (autoloop local serve) or configure AWS credentials and region.")
        raise
    print(f"report: {path.resolve()}")
    return 0


def _client_factory() -> Any:
    from autoloop.adapters import client  # boto3's own resolution: AWS_ENDPOINT_URL, region, credentials

    return client


def cmd_gen_data(args: argparse.Namespace) -> int:
    from autoloop_cli import datagen

    if args.model == "churn":
        written = datagen.write_csv(args.out, args.rows, seed=args.seed, drift=args.drift)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        datagen.GENERATORS[args.model](args.rows, seed=args.seed, drift=args.drift).to_csv(out, index=False)
        written = out.stat().st_size
    print(f"wrote {args.rows:,} rows of {args.model} data ({written:,} bytes) to {args.out}")
    return 0


RUNTIME_HELP = ("the Python local jobs run on: image (a venv like the job's image, built on first use; needs the "
                "package registry once), auto (that venv if built, else the project's), project (the project's venv)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="autoloop", description="Autoloop: event-driven MLOps for SageMaker.")
    sub = top.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="the local AWS").add_subparsers(dest="local_command", required=True)
    demo = local.add_parser("demo", help="run the lifecycle end to end on the local AWS")
    demo.add_argument("--rows", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each execution")
    demo.add_argument("--train-only", action="store_true",
                      help="stop after the first model is registered (no deploy, traffic, drift or retrain)")
    demo.add_argument("--report", help="where to write the HTML lifecycle report (default .autoloop/report.html)")
    demo.add_argument("--model", default="churn",
                      help="a model of models/ (default churn, with the drift-and-labels story); another model "
                           "runs train, gate, register, deploy, a request and its monthly batch")
    demo.add_argument("--data", help="a CSV with the model's columns (label first) to train on, instead of "
                                     "the example model's generated rows")
    demo.add_argument("--runtime", choices=("auto", "image", "project"),
                      help=RUNTIME_HELP + "; default $AUTOLOOP_LOCAL_RUNTIME, else auto")
    demo.add_argument("--no-tracking", action="store_true",
                      help="start no local MLflow server (by default the stack logs every model's runs, "
                           "registrations, deployments, monitoring and batch runs to one under .autoloop/mlflow/)")
    demo.set_defaults(func=cmd_demo)

    serve = local.add_parser("serve", help="run the local AWS as a server, booted from template.yaml")
    serve.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (default 4566; 0 picks a free one)")
    serve.add_argument("--time-scale", type=float, default=1.0, metavar="FACTOR", help=TIME_SCALE_HELP)
    serve.add_argument("--template", default="template.yaml")
    serve.add_argument("--stack-name", default="autoloop-local")
    serve.add_argument("--parameter", action="append", metavar="KEY=VALUE",
                       help="a template parameter override (repeatable), as sam deploy's --parameter-overrides")
    serve.add_argument("--runtime", choices=("auto", "image", "project"),
                       help=RUNTIME_HELP + "; default $AUTOLOOP_LOCAL_RUNTIME, else auto")
    serve.add_argument("--tracking", action="store_true",
                       help="also start a local MLflow server (store under .autoloop/mlflow/, new each time) and "
                            "log every model's runs to it (the template parameter MlflowTrackingUri)")
    serve.set_defaults(func=cmd_serve)

    rts = local.add_parser("runtimes", help="list or build the local runtimes (venvs like the framework images) "
                                            "the models' jobs run on")
    rts.add_argument("--build", action="store_true", help="build the ones not built yet (needs the package registry)")
    rts.add_argument("--model", action="append", help="only this model's (repeatable)")
    rts.add_argument("--region", default="us-east-1", help="the region the images are resolved for")
    rts.set_defaults(func=cmd_runtimes)

    put = local.add_parser("put", help="upload a file to the data bucket of the running local AWS")
    put.add_argument("file")
    put.add_argument("--model", help="the model it is for (a published config); or give --key")
    put.add_argument("--key", help="object key (default incoming/<model>/<file name>); names the model")
    put.add_argument("--wait", action="store_true", help="follow the run it starts and print how it ended")
    put.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits for the run")
    put.set_defaults(func=cmd_put)

    for name in ("runs", "executions"):
        ex = local.add_parser(name, help="list TrainingPipeline runs with how each ended"
                              + (" (same as runs)" if name == "executions" else ""))
        ex.add_argument("--model", help="only this model's runs")
        ex.add_argument("--path", action="store_true", help="also print the states each run went through")
        ex.set_defaults(func=cmd_executions)

    fire = local.add_parser("fire-schedule", help="fire a schedule (or schedule rule) of the running local AWS now")
    fire.add_argument("rule", help="schedule name or ARN (e.g. autoloop-local-churn-batch), or a rule name")
    fire.add_argument("--time", help="the scheduled time to pretend, ISO 8601 (default now)")
    fire.add_argument("--group", help="the schedule group (default: default)")
    fire.set_defaults(func=cmd_fire_schedule)

    transform = local.add_parser("transform", help="score one month with the batch transform now")
    transform.add_argument("--month", required=True, help="YYYY-MM (a month that has ended)")
    transform.add_argument("--model", default="churn")
    transform.add_argument("--force", action="store_true", help="score the month again even if it is published")
    transform.add_argument("--timeout", type=float, default=600.0)
    transform.add_argument("--no-wait", action="store_true", help="start it and return")
    transform.set_defaults(func=cmd_transform)

    chk = sub.add_parser(
        "check", help="run a model's real steps on a small sample, offline (no AWS, no network)",
        description="Validate models/<model>/ as publish does and the data as ValidateInput does, then run "
                    "Autoloop's preprocess, the model's train.py, Autoloop's evaluate and the serving code "
                    "(inference.py) on a sample, as local SageMaker jobs under the container contract, and print "
                    "the metric against the threshold. Exit 0: passed; 1: the sample's metric misses the "
                    "threshold; 2: a step failed (one line says which and why).")
    chk.add_argument("model", help="the model folder's name (models/<model>/)")
    chk.add_argument("--data", help="a CSV with the config's columns, label first "
                                    "(default models/<model>/sample.csv)")
    chk.add_argument("--rows", type=int, help="train on a seeded sample of this many rows "
                                              "(default all, up to 1000; at least the config's min_rows)")
    chk.add_argument("--runtime", choices=("image", "auto", "project"),
                     help=RUNTIME_HELP + "; default $AUTOLOOP_LOCAL_RUNTIME, else image")
    chk.set_defaults(func=cmd_check)

    pub = sub.add_parser(
        "publish", help="upload ml/ and the model configs to a deployed stack",
        description="Validate every model folder (config, train.py, requirements.txt), then upload "
                    "Autoloop's job scripts and each model's source bundle and config to the stack's artifacts "
                    "bucket. Publish runs the static checks only; run `autoloop check <model>` first to run "
                    "the model's scripts on a sample, or pass --check.")
    pub.add_argument("--check", action="store_true",
                     help="first run `autoloop check` on every model that has a sample.csv (offline, seconds "
                          "each); a failed step publishes nothing, a sample metric below the threshold is only "
                          "printed")
    pub.add_argument("--runtime", choices=("image", "auto", "project"),
                     help="with --check: " + RUNTIME_HELP + "; default $AUTOLOOP_LOCAL_RUNTIME, else image")
    pub.add_argument("--stack-name", required=True)
    pub.add_argument("--region")
    pub.set_defaults(func=cmd_publish)

    smk = sub.add_parser(
        "smoke", help="upload a sample to a deployed stack and follow the run it starts (CI/CD's smoke check)",
        description="Upload a CSV to incoming/<model>/ of the stack's data bucket, as a user's upload arrives, "
                    "follow the TrainingPipeline run it starts, printing each state, and judge how it ended. "
                    "Exit 0: a model package was registered, or the gate kept the champion (BelowChampion, "
                    "as when the same sample is uploaded again); 1: the run ended otherwise, or not within "
                    "--timeout (the last line says why); 2: it could not start.")
    smk.add_argument("--stack-name", required=True)
    smk.add_argument("--model", required=True, help="a model published to the stack")
    smk.add_argument("--data", help="the CSV to upload (default models/<model>/sample.csv)")
    smk.add_argument("--timeout", type=float, default=3600.0,
                     help="seconds to wait for the run to end (default 3600: on AWS, each SageMaker job "
                          "takes minutes)")
    smk.add_argument("--poll", type=float, default=10.0,
                     help="seconds between reads of the run (default 10; Step Functions throttles faster reads)")
    smk.add_argument("--region")
    smk.set_defaults(func=cmd_smoke)
    ui = sub.add_parser("ui", help="browse the local MLflow store (the demo's runs) with `mlflow ui`")
    ui.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    ui.set_defaults(func=cmd_ui)

    rep = sub.add_parser("report", help="write the HTML lifecycle report of an execution")
    rep.add_argument("--execution-arn", help="a TrainingPipeline (or any Autoloop pipeline) execution ARN")
    rep.add_argument("--latest", action="store_true", help="the newest TrainingPipeline execution of --stack-name")
    rep.add_argument("--stack-name", default=None,
                     help="the stack (default with --latest: autoloop-local; otherwise found from the execution)")
    rep.add_argument("--region")
    rep.add_argument("--out", default=str(Path(os.environ.get("AUTOLOOP_LOCAL_HOME", ".autoloop")) / "report.html"))
    rep.set_defaults(func=cmd_report)

    gen = sub.add_parser("gen-data", help="write generated data of an example model as CSV")
    gen.add_argument("--model", choices=("churn", "price", "plan", "fraud"), default="churn",
                     help="churn (binary, the default), price (regression), plan (multiclass) or fraud (binary)")
    gen.add_argument("--rows", type=int, default=10_000)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--drift", type=float, default=0.0)
    gen.add_argument("--out", required=True)
    gen.set_defaults(func=cmd_gen_data)
    return top


def main(argv: list[str] | None = None) -> int:
    level = os.environ.get("AUTOLOOP_LOG_LEVEL", "WARNING")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as exc:  # one readable line instead of a traceback (AUTOLOOP_DEBUG=1 shows it)
        message = failure_message(exc)
        if message is None or os.environ.get("AUTOLOOP_DEBUG"):
            raise
        print(f"autoloop {args.command}: {message}", file=sys.stderr)
        return 2


def failure_message(exc: Exception) -> str | None:
    """What went wrong and what to do, for the errors a user can fix; None for a bug."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    from autoloop.errors import AutoloopError

    if isinstance(exc, AutoloopError):
        return str(exc)
    if isinstance(exc, NoRegionError):
        return "no AWS region is set: pass --region, or set AWS_DEFAULT_REGION (or a region in ~/.aws/config)."
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found: configure a profile (aws configure) or set AWS_PROFILE."
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach AWS: {exc}. For the local AWS, start `autoloop local serve` and set AWS_ENDPOINT_URL."
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"AWS refused {exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}"
    return None


if __name__ == "__main__":
    sys.exit(main())
