"""An export recorded in MLflow: the bundle logged on the search's run, and an alias of the registered
model pointed at the exported trial's version.

Which alias (decided here, said by ``cnn-search export``): the search's winner keeps ``champion``, set
when the search registered it; ``export --pick RULE`` sets ``picked`` and ``export --trial N`` sets
``exported``, so exporting another point of the front or another trial never moves the winner's alias
(MLflow's aliases are the registry's own way to name several versions for several uses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search.export._out import sha256


def export_alias(trial: int | None, pick: str | None) -> str:
    """The alias an export sets: ``picked`` (``--pick``), ``exported`` (``--trial``) or ``champion``.

    >>> export_alias(None, None), export_alias(None, "params"), export_alias(3, None)
    ('champion', 'picked', 'exported')
    """
    if pick is not None:
        return "picked"
    return "exported" if trial is not None else "champion"


def record_export(s: Any, bundle: Path, model: Any, example: Any, *, alias: str) -> str:
    """Log the bundle on the search's run and point ``alias`` at the exported trial's version; returns ``alias``."""
    client, run_id = s.client, s.parent.info.run_id
    client.log_artifacts(run_id, str(bundle), artifact_path="export")
    sums: dict[str, str] = {}
    for line in (bundle / "SHA256SUMS").read_text().splitlines():
        digest, file = line.split("  ", 1)
        sums[file] = digest
    from mlflow.entities import RunTag

    tags = [RunTag(f"export.sha256.{name}", digest) for name, digest in sums.items() if "/" not in name]
    tags += [RunTag("export.trial", str(s.trial)), RunTag("export.sha256sums", sha256(bundle / "SHA256SUMS"))]
    client.log_batch(run_id, tags=tags)
    version = next(
        (v for v in client.search_model_versions(f"name='{s.name}'") if v.tags.get("trial") == str(s.trial)), None
    )
    if version is None:
        from search.tracking import register_keras_model

        number = register_keras_model(s.tracking_uri, s.name, model, run_id=run_id, example=example, trial=s.trial)
    else:
        number = str(version.version)
    client.set_registered_model_alias(s.name, alias, number)
    client.set_model_version_tag(s.name, number, "export_sha256_keras", sums.get("model.keras", ""))
    return alias
