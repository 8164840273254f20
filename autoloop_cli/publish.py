"""Upload the ML code and the model configs to the artifacts bucket.

The same step serves AWS (`autoloop publish --stack-name autoloop-dev` after `sam deploy`)
and local mode (run by the demo after booting the template). Processing jobs mount
`code/ml/` and training jobs receive `code/ml/sourcedir.tar.gz` as an input channel.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoloop.config import parse_model_config
from autoloop.errors import InvalidModelConfig, MlCodeMissing
from autoloop.jobs import SOURCEDIR, code_key, config_key

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
ML_DIR = ROOT / "ml"


@dataclass(frozen=True)
class Published:
    bucket: str
    scripts: tuple[str, ...]
    models: tuple[str, ...]


def sourcedir_bytes(ml_dir: Path = ML_DIR) -> bytes:
    """A deterministic tar.gz of the ML scripts (same input, same bytes, same ETag)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in sorted(ml_dir.glob("*.py")):
            info = tarfile.TarInfo(path.name)
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def model_configs(ml_dir: Path = ML_DIR) -> dict[str, bytes]:
    """Every model config, validated (InvalidModelConfig names the file and the field)."""
    configs = {}
    for path in sorted((ml_dir / "models").glob("*.json")):
        config = parse_model_config(path.read_bytes(), str(path))
        if config.model != path.stem:
            raise InvalidModelConfig(f"{path}: 'model' is {config.model!r}, so the file must be named "
                                     f"{config.model}.json.")
        configs[config.model] = path.read_bytes()
    if not configs:
        raise InvalidModelConfig(f"no model configs in {ml_dir / 'models'}.")
    return configs


def publish(s3: Any, bucket: str, ml_dir: Path = ML_DIR) -> Published:
    """Validate every model config, then upload scripts, sourcedir.tar.gz and configs."""
    configs = model_configs(ml_dir)
    scripts = sorted(ml_dir.glob("*.py"))
    if not scripts:
        raise MlCodeMissing(f"no ML scripts (*.py) in {ml_dir}.", "Run autoloop from a checkout of the project.")
    for path in scripts:
        s3.put_object(Bucket=bucket, Key=code_key(path.name), Body=path.read_bytes())
    s3.put_object(Bucket=bucket, Key=code_key(SOURCEDIR), Body=sourcedir_bytes(ml_dir))
    for model, raw in configs.items():
        s3.put_object(Bucket=bucket, Key=config_key(model), Body=raw, ContentType="application/json")
    log.info("published %d scripts and %d model configs to s3://%s", len(scripts), len(configs), bucket)
    return Published(bucket, tuple(p.name for p in scripts), tuple(configs))


def publish_config_with(s3: Any, bucket: str, model: str, overrides: dict[str, Any], ml_dir: Path = ML_DIR) -> None:
    """Publish ``model``'s config with some keys changed (validated like any config): for runs
    that upload the same rows again and must not stop at the gate's tie rule."""
    config = {**json.loads(model_configs(ml_dir)[model]), **overrides}
    raw = json.dumps(config).encode()
    parse_model_config(raw, f"{model}.json with {sorted(overrides)}")
    s3.put_object(Bucket=bucket, Key=config_key(model), Body=raw, ContentType="application/json")
