"""The model card of an exported generator: what it is, what it was trained on, how good it is, what for.

04_generate writes it beside the standalone ``generator.keras``
(:func:`mammogan_lib.gan.generate.export_generator`); 05_metrics adds its metrics to it
(:func:`attach_metrics`), as they exist only once 05 has run. No framework is imported here, so both
notebooks can call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.gan.regularisers import describe_regularisers

PHANTOM_LICENCE = "synthetic phantom (project's own, MIT)"
CBIS_DDSM_LICENCE = "CC BY 3.0 (CBIS-DDSM, The Cancer Imaging Archive)"
LICENCES: dict[str, str] = {"kaggle_jpeg": CBIS_DDSM_LICENCE, "tcia_dicom": CBIS_DDSM_LICENCE}
"""Licences of the layouts whose terms are known; other datasets' terms are the user's to check."""

INTENDED_USE = (
    "research data augmentation (e.g. training-set enlargement in classifier experiments); not for "
    "diagnosis, screening or any clinical decision, and not a substitute for real patient images"
)
METRICS_PENDING = "not computed yet: 05_metrics adds them to this card"


def is_phantom(dataset_root: str) -> bool:
    """Whether 01 read the embedded phantom (it lives in a ``phantom`` folder of the data cache)."""
    return "phantom" in Path(dataset_root).parts or (Path(dataset_root) / "phantom_truth.csv").is_file()


def training_data(run_dir: Path | str, n_images: int) -> dict[str, Any]:
    """What the generator was trained on, from 01's ``filter_summary.json`` (and its licence)."""
    summary_path = RunPaths(run_dir).filter_summary
    summary = files.read_json(summary_path) if summary_path.is_file() else {}
    root, layout = str(summary.get("dataset_root", "")), summary.get("layout", "")
    if root and is_phantom(root):
        dataset, licence = "embedded phantom (synthetic, no patient data)", PHANTOM_LICENCE
    else:
        dataset = layout or "unknown (no filter_summary.json)"
        licence = LICENCES.get(layout, f"not recorded: check the terms of the {layout or 'source'} dataset")
    return {
        "dataset": dataset,
        "layout": layout,
        "licence": licence,
        "label_basis": summary.get("label_basis", []),
        "selection": summary.get("selection", ""),
        "training_images": _training_images(run_dir),
        "n_images": n_images,
    }


def _training_images(run_dir: Path | str) -> str:
    """'whole breasts', pre-cut crops, or the lesion patches' geometry, from 02's record."""
    record = files.read_json_if_present(RunPaths(run_dir).preprocess_record) or {}
    if record.get("preparation") == "crops":
        return "pre-cut region-of-interest crops as stored (no breast extraction)"
    if record.get("training_images") != "lesion_patches":
        return "whole breasts"
    geometry = record.get("geometry", {})
    return (
        f"lesion-centred patches (side {geometry.get('scale')} x the finding's extent, at least "
        f"{geometry.get('min_side')} source pixels)"
    )


def training_classes(run_dir: Path | str) -> list[str]:
    """The finding types 01 selected (its ``abnormalities``), from its provenance record, or ``[]``."""
    record_path = RunPaths(run_dir).stage_record("01_filter")
    if not record_path.is_file():
        return []
    return list(files.read_json(record_path).get("params", {}).get("abnormalities", []))


def build_model_card(
    run_dir: Path | str, params: Mapping[str, Any], state: Mapping[str, Any], checkpoint_name: str
) -> dict[str, Any]:
    """The card of the generator of a checkpoint (its ``params.json`` and ``state.json``), without metrics."""
    return {
        "model": f"mammogan generator, run {params.get('exp_id')}, {checkpoint_name}",
        "file": RunPaths(run_dir).exported_generator.name,
        "architecture": params.get("architecture"),
        "latent_dim": params.get("latent_dim"),
        "width": params.get("width"),
        "resolution": params.get("resolution"),
        "weights": describe_weights(params),
        "output": "grayscale images (N, resolution, resolution, 1), float32 in [-1, 1]",
        "classes": list(params["classes"]) if params.get("conditional") else training_classes(run_dir),
        "conditional": bool(params.get("conditional")),
        **({"class_counts": params["class_counts"]} if params.get("conditional") else {}),
        "training_data": training_data(run_dir, int(params.get("n_images", 0))),
        "epochs": int(state.get("epoch", 0)),
        "steps": int(state.get("step", 0)),
        "augment_policy": params.get("augment_policy") or "none",
        "regularisers": describe_regularisers(params),
        "training_schedule": describe_schedule(params),
        "metrics": METRICS_PENDING,
        "intended_use": INTENDED_USE,
        "generate": "python -m mammogan_lib.gan.generate generator.keras --count N --out DIR [--seed S]"
        + (f" [--class {'|'.join(params['classes'])}]" if params.get("conditional") else ""),
    }


def describe_weights(params: Mapping[str, Any]) -> str:
    """Which weights the exported generator holds: the moving average of G's (``g_ema_decay``) or G's."""
    decay = params.get("g_ema_decay") or 0.0
    if decay:
        return f"exponential moving average of the generator's weights (decay {decay:g})"
    return "the generator's weights at the checkpoint (no moving average)"


def describe_schedule(params: Mapping[str, Any]) -> str:
    """'ordinary (one resolution)', or a progressive run's stages: resolution and epochs of each."""
    resolutions = params.get("progressive_resolutions") or []
    if not resolutions:
        return f"ordinary: trained at {params.get('resolution')} x {params.get('resolution')} throughout"
    stages = ", then ".join(
        f"{epochs:,} epochs at {r} x {r}"
        for r, epochs in zip(resolutions, params["progressive_epochs"], strict=True)
    )
    fade = params.get("progressive_fade_fraction", 0.5)
    return f"progressive (Karras et al. 2018): {stages}; each new block faded in over {fade:g} of its stage"


FEATURE_NETWORK_TITLES = {
    "effnet_lite0": "ImageNet EfficientNet-Lite0 1280-d pool features (not InceptionV3: FD, not FID)",
    "radiomics": "radiomic features of the Fréchet Radiomic Distance (frd-score; the real set first)",
    "inception": "InceptionV3 2048-d pool features (torchmetrics FID/KID)",
    "dinov2": "DINOv2 ViT-B/14 768-d class token (torch-fidelity)",
}


def card_metrics(results: Mapping[str, Any]) -> dict[str, Any]:
    """The card's metrics from 05's ``metrics.json``: the headline numbers, the epoch they were measured on,
    the feature networks they were computed with (named, with their weights' source) and 05's trust
    warnings."""
    networks = results.get("features") or {"inception": results.get("inception", {})}

    def described(name: str, record: Mapping[str, Any]) -> str:
        title = FEATURE_NETWORK_TITLES.get(name, f"{name} (the user's feature network)")
        if name == "radiomics":  # no weights: its record names the packages and the FRD version
            return f"{title}: {record.get('source')}"
        weights = (
            "pretrained" if record.get("pretrained") else "RANDOM weights: not comparable with published"
        )
        return f"{title}, {weights}, weights from {record.get('source')}"

    return {
        "epoch": results.get("epoch"),
        "feature_networks": [described(name, record) for name, record in networks.items()],
        "left_out_networks": results.get("left_out_networks", []),
        **results.get("headline", {}),
        "warnings": results.get("warnings", []),
    }


def attach_metrics(run_dir: Path | str) -> Path | None:
    """Add 05's metrics to the run's model card when they measured the exported checkpoint's epoch; return
    the card's path (``None`` when nothing was exported)."""
    paths = RunPaths(run_dir)
    if not paths.model_card.is_file() or not paths.metrics.is_file():
        return None
    card, results = files.read_json(paths.model_card), files.read_json(paths.metrics)
    if results.get("epoch") != card.get("epochs"):
        card["metrics"] = f"05_metrics evaluated epoch {results.get('epoch')}, not this generator's"
    else:
        card["metrics"] = card_metrics(results)
    return files.write_json(paths.model_card, card)
