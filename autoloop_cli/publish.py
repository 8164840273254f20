"""Upload Autoloop's job scripts and each model's folder to the artifacts bucket.

The same step serves AWS (`autoloop publish --stack-name autoloop-dev` after `sam deploy`)
and local mode (run by the demo after booting the template).

- ``ml/*.py``: Autoloop's own job scripts (preprocess, evaluate, monitor, ...), under
  ``code/ml/``; processing jobs mount that prefix.
- ``models/<model>/``: a model is a folder with ``config.json`` and the team's script-mode
  ``train.py`` (plus any modules it imports, an optional ``inference.py`` that replaces
  Autoloop's, and an optional ``requirements.txt``). Its ``sourcedir.tar.gz`` (the folder, with
  ``autoloop_ml_common.py`` and Autoloop's ``inference.py`` unless the folder has its own) goes
  to ``code/models/<model>/``; the model's training job receives it as its ``code`` channel.
  The config goes to ``config/models/<model>.json``.

Everything is validated before the first upload: a bad folder fails with one line naming it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoloop.config import ModelConfig, PublishedBuild, parse_model_config
from autoloop.errors import InvalidModelConfig, MlCodeMissing
from autoloop.jobs import CONFIG_PREFIX, ENTRY_POINT, code_key, config_key, model_code_key
from autoloop.naming import image_repository

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
ML_DIR = ROOT / "ml"
MODELS_DIR = ROOT / "models"
CONFIG_FILE = "config.json"
REQUIREMENTS = "requirements.txt"
#: A model folder's sample data for ``autoloop check``; not part of the source bundle (training
#: data never travels with the code, and the bundle's digest stays that of the code).
SAMPLE_FILE = "sample.csv"
#: Autoloop's files every bundle gets; a model folder may replace inference.py with its own.
BUNDLED = ("autoloop_ml_common.py", "inference.py")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Published:
    bucket: str
    scripts: tuple[str, ...]
    models: tuple[str, ...]


@dataclass(frozen=True)
class ModelFolder:
    """``models/<name>/``, validated: its config and the files of its source bundle."""

    name: str
    path: Path
    raw_config: bytes
    config: ModelConfig

    def files(self, ml_dir: Path = ML_DIR) -> dict[str, bytes]:
        """The bundle's files by relative path: Autoloop's defaults, then the folder's own."""
        files = {name: (ml_dir / name).read_bytes() for name in BUNDLED}
        for path in sorted(self.path.rglob("*")):
            rel = path.relative_to(self.path)
            if path.is_file() and rel.name != CONFIG_FILE and rel.as_posix() != SAMPLE_FILE and not _ignored(rel):
                files[rel.as_posix()] = path.read_bytes()
        return files

    def unpack(self, dest: Path, ml_dir: Path = ML_DIR) -> Path:
        """The bundle's files under ``dest``, as the training job has them in ``/opt/ml/code``
        (to run ``train.py`` outside a job)."""
        for name, body in self.files(ml_dir).items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(body)
        return dest

    def bundle(self, ml_dir: Path = ML_DIR) -> bytes:
        """``sourcedir.tar.gz``: what the training job extracts to ``/opt/ml/code``."""
        return sourcedir_bytes(self.files(ml_dir))


def _ignored(rel: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in rel.parts) or rel.suffix == ".pyc"


def sourcedir_bytes(files: dict[str, bytes]) -> bytes:
    """A deterministic tar.gz of ``files`` (same input, same bytes, same ETag)."""
    buffer = io.BytesIO()
    # tarfile's "w:gz" stamps the gzip header with the current time: the same files a second
    # later would be other bytes (another ETag, another digest in the package's lineage).
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def check_requirements(folder: Path) -> None:
    """Training runs with network isolation: SageMaker's framework container installs
    ``requirements.txt`` with pip and no index is reachable. So every requirement must be
    vendored as a wheel in the folder: the file must say ``--no-index`` and
    ``--find-links <folder>``, and each named package must have a wheel there."""
    path = folder / REQUIREMENTS
    if not path.is_file():
        return
    where = f"{folder.name}/{REQUIREMENTS}"
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    options = " ".join(line for line in lines if line.startswith("-"))
    links = re.findall(r"(?:--find-links|-f)[ =]\s*(\S+)", options)
    fix = (f"training runs with network isolation, so pip cannot reach an index: put the wheels in "
           f"models/{folder.name}/wheels/ and start {REQUIREMENTS} with '--no-index' and '--find-links wheels' "
           "(or drop packages the framework image already has)")
    if "--no-index" not in options.split() or not links:
        raise InvalidModelConfig(f"{where}: {fix}.")
    wheels = {w.name.split("-", 1)[0].lower().replace("_", "-")
              for link in links for w in (folder / link).glob("*.whl")}
    for line in lines:
        match = _REQUIREMENT_NAME.match(line) if line and not line.startswith("-") else None
        if match and match.group(1).lower().replace("_", "-") not in wheels:
            raise InvalidModelConfig(f"{where}: no wheel for {match.group(1)!r} in {', '.join(links)}; {fix}.")


def model_folders(models_dir: Path | None = None) -> dict[str, ModelFolder]:
    """Every folder under ``models/``, validated (InvalidModelConfig names the folder and the field)."""
    models_dir = models_dir or MODELS_DIR
    found = {}
    for folder in sorted(p for p in models_dir.glob("*") if p.is_dir() and not _ignored(Path(p.name))):
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise InvalidModelConfig(f"{folder}: no {CONFIG_FILE}; a model is a folder with {CONFIG_FILE} "
                                     f"and {ENTRY_POINT}.")
        raw = config_path.read_bytes()
        config = parse_model_config(raw, str(config_path))
        if config.model != folder.name and (models_dir / config.model / CONFIG_FILE).is_file():
            raise InvalidModelConfig(f"{config_path}: duplicate model name: 'model' is {config.model!r}, which is "
                                     f"already models/{config.model}/; a copied folder needs a name of its own "
                                     f"(rename the folder and set 'model' to it).")
        if config.model != folder.name:
            raise InvalidModelConfig(f"{config_path}: 'model' is {config.model!r}, so the folder must be named "
                                     f"models/{config.model}/.")
        if config.published is not None:
            raise InvalidModelConfig(f"{config_path}: 'published' is written by autoloop publish (the resolved images "
                                     "and the bundle's digest); remove it from the folder's config.")
        if not (folder / ENTRY_POINT).is_file():
            raise InvalidModelConfig(f"{folder}: no {ENTRY_POINT}, the model's script-mode training script "
                                     "(docs/MODELS.md says what it reads and writes).")
        check_requirements(folder)
        found[config.model] = ModelFolder(config.model, folder, raw, config)
    if not found:
        raise InvalidModelConfig(f"no models in {models_dir}: add models/<name>/{CONFIG_FILE} and {ENTRY_POINT}.")
    return found


def model_configs(models_dir: Path | None = None) -> dict[str, bytes]:
    """Every model's config as published, validated."""
    return {name: folder.raw_config for name, folder in model_folders(models_dir).items()}


@dataclass(frozen=True)
class Prepared:
    """What publish uploads, validated and resolved for a region: each model's bundle and config."""

    folders: dict[str, ModelFolder]
    bundles: dict[str, bytes]
    configs: dict[str, bytes]


def prepare(region: str | None, ml_dir: Path = ML_DIR, models_dir: Path | None = None,
            folders: dict[str, ModelFolder] | None = None) -> Prepared:
    """Every model folder validated (or ``folders``, already validated), bundled, and its config
    with the framework images resolved for ``region``: all of publish's checks, no AWS call."""
    folders = model_folders(models_dir) if folders is None else folders
    bundles = {name: folder.bundle(ml_dir) for name, folder in folders.items()}
    return Prepared(folders, bundles, published_configs(folders, region, bundles))


def publish(s3: Any, bucket: str, ml_dir: Path = ML_DIR, models_dir: Path | None = None,
            prepared: Prepared | None = None) -> Published:
    """Validate every model folder (unless ``prepared`` already did), then upload the job scripts,
    each model's bundle and config."""
    scripts = sorted(ml_dir.glob("*.py"))
    if not scripts:
        raise MlCodeMissing(f"no ML scripts (*.py) in {ml_dir}.", "Run autoloop from a checkout of the project.")
    # every image resolves before the first upload
    prepared = prepared or prepare(_region(s3), ml_dir, models_dir)
    for path in scripts:
        s3.put_object(Bucket=bucket, Key=code_key(path.name), Body=path.read_bytes())
    for name in prepared.folders:
        s3.put_object(Bucket=bucket, Key=model_code_key(name), Body=prepared.bundles[name])
        s3.put_object(Bucket=bucket, Key=config_key(name), Body=prepared.configs[name],
                      ContentType="application/json")
    log.info("published %d scripts and models %s to s3://%s", len(scripts), ", ".join(prepared.folders), bucket)
    return Published(bucket, tuple(p.name for p in scripts), tuple(prepared.folders))


def publish_config_with(s3: Any, bucket: str, model: str, overrides: dict[str, Any],
                        models_dir: Path | None = None) -> None:
    """Publish ``model``'s config with some keys changed (validated like any config): for runs
    that upload the same rows again and must not stop at the gate's tie rule."""
    folder = model_folders(models_dir)[model]
    config = {**json.loads(folder.raw_config), **overrides}
    parse_model_config(json.dumps(config), f"{model}.json with {sorted(overrides)}")
    raw = published_config(model, config, _region(s3), folder.bundle())
    s3.put_object(Bucket=bucket, Key=config_key(model), Body=raw, ContentType="application/json")


def published_models(s3: Any, bucket: str) -> list[str]:
    """The models whose config is published in the artifacts bucket ``bucket``, sorted."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=CONFIG_PREFIX)
    return sorted(o["Key"][len(CONFIG_PREFIX):].removesuffix(".json") for page in pages
                  for o in page.get("Contents", []))


#: The template parameter naming the ECR repository of the models' own containers.
CUSTOM_IMAGE_PARAMETER = "CustomImageRepository"


def check_custom_images(folders: dict[str, ModelFolder], stack_parameters: dict[str, str]) -> None:
    """A model in its own container (``framework.image_uri``) runs only if the stack's execution
    role may pull it: from the repository the stack's CustomImageRepository names."""
    allowed = stack_parameters.get(CUSTOM_IMAGE_PARAMETER, "")
    for name, folder in folders.items():
        for field in ("image_uri", "inference_image_uri"):
            uri = getattr(folder.config.framework, field)
            if uri and image_repository(uri) != allowed:
                raise InvalidModelConfig(
                    f"models/{name}/{CONFIG_FILE}: framework.{field} is in ECR repository {image_repository(uri)!r}, "
                    f"which the stack's execution role may not pull from (its {CUSTOM_IMAGE_PARAMETER} is "
                    f"{allowed!r}).", f"Deploy the stack with {CUSTOM_IMAGE_PARAMETER}={image_repository(uri)}, "
                    "then run `autoloop publish` again.")


def published_configs(folders: dict[str, ModelFolder], region: str | None,
                      bundles: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Each model's config as published (:func:`published_config`) for ``region``: InvalidModelConfig
    for the first whose framework image the SDK cannot resolve, NoRegionError without a region."""
    region = _need_region(region)
    return {name: published_config(name, json.loads(folder.raw_config), region,
                                   (bundles or {}).get(name) or folder.bundle())
            for name, folder in folders.items()}


def _region(s3: Any) -> str:
    """The stack's region: the one its artifacts bucket's client is for (images are regional)."""
    return _need_region(getattr(getattr(s3, "meta", None), "region_name", None))


def _need_region(region: str | None) -> str:
    if not region:  # the CLI says how to set one
        from botocore.exceptions import NoRegionError

        raise NoRegionError()
    return str(region)


def published_config(model: str, config: dict[str, Any], region: str, bundle: bytes) -> bytes:
    """``model``'s ``config`` as published: plus ``published``, the training and inference images
    resolved for ``region`` (:mod:`autoloop_cli.images`) and the sha256 of the uploaded ``bundle``."""
    from autoloop_cli.images import resolve_images

    where = f"models/{model}/{CONFIG_FILE}"
    framework = parse_model_config(json.dumps(config), where).framework
    training, inference = resolve_images(framework, region, where)
    build = PublishedBuild(training_image=training, inference_image=inference, region=region,
                           bundle_sha256=hashlib.sha256(bundle).hexdigest())
    raw = json.dumps({**config, "published": build.model_dump()}, indent=2).encode()
    parse_model_config(raw, where)  # what the Lambdas will read must parse
    return raw
