"""Shared losses: GAN objectives on hand-made logits, feature matching, masked L1, Gram and
style/perceptual properties, and the VGG-19 stack with its weights loading and refusals."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from safetensors.torch import save_file

from inpaint_core.errors import InpaintError, InvalidInputError, ParameterError
from inpaint_core.nn.losses import (
    VGG19_CONV_INDICES,
    VGG19_LAYER_INDICES,
    VGG19_WEIGHTS_ENV,
    GanLoss,
    InvalidWeightsError,
    MissingWeightsError,
    PerceptualStyleLoss,
    Vgg19Features,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    gram_matrix,
    load_vgg19_weights,
    masked_l1,
    perceptual_loss,
    style_loss,
)


def _logits(value: float) -> torch.Tensor:
    return torch.full((2, 1, 3, 3), value)


# --- adversarial losses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "real", "fake", "expected"),
    [
        (GanLoss.HINGE, 2.0, -2.0, 0.0),
        (GanLoss.HINGE, 0.0, 0.0, 2.0),
        (GanLoss.HINGE, 0.5, 0.25, 0.5 + 1.25),
        (GanLoss.NON_SATURATING, 0.0, 0.0, 2 * math.log(2)),
        (GanLoss.NON_SATURATING, 1.0, -1.0, 2 * math.log1p(math.exp(-1.0))),
        (GanLoss.LSGAN, 1.0, 0.0, 0.0),
        (GanLoss.LSGAN, 0.0, 1.0, 2.0),
        (GanLoss.LSGAN, 3.0, -0.5, 4.0 + 0.25),
    ],
)
def test_discriminator_loss_known_values(kind, real, fake, expected):
    loss, metrics = discriminator_loss(kind, _logits(real), _logits(fake))
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert metrics == pytest.approx({"d_real": real, "d_fake": fake, "d_loss": expected})


@pytest.mark.parametrize(
    ("kind", "fake", "expected"),
    [
        (GanLoss.HINGE, 1.5, -1.5),
        (GanLoss.NON_SATURATING, 0.0, math.log(2)),
        (GanLoss.LSGAN, 0.0, 1.0),
        (GanLoss.LSGAN, 1.0, 0.0),
    ],
)
def test_generator_loss_known_values(kind, fake, expected):
    loss, metrics = generator_loss(kind, _logits(fake))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert metrics["g_adv"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind", list(GanLoss))
def test_generator_loss_decreases_as_fake_logits_rise(kind):
    # LSGAN's minimum is at 1, so stay below it.
    values = [generator_loss(kind, _logits(v))[0].item() for v in (-2.0, -1.0, 0.0, 0.5)]
    assert all(a > b for a, b in itertools.pairwise(values))


def test_discriminator_loss_passes_gradients_to_logits():
    fake = _logits(0.0).requires_grad_()
    loss, _ = discriminator_loss("hinge", _logits(0.0), fake)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_gan_loss_parse():
    assert GanLoss.parse("hinge") is GanLoss.HINGE
    assert GanLoss.parse("NSGAN") is GanLoss.NON_SATURATING
    assert GanLoss.parse("non_saturating") is GanLoss.NON_SATURATING
    assert GanLoss.parse(GanLoss.LSGAN) is GanLoss.LSGAN
    with pytest.raises(InvalidInputError, match="wgan") as info:
        GanLoss.parse("wgan")
    for name in ("'hinge'", "'nsgan'", "'lsgan'"):
        assert name in str(info.value)
    with pytest.raises(InvalidInputError):
        discriminator_loss("vanilla", _logits(0.0), _logits(0.0))


# --- feature matching and L1 -----------------------------------------------------------------


def test_feature_matching_identical_is_zero_and_offset_is_hand_value():
    torch.manual_seed(0)
    layers = [torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8, 8)]
    loss, metrics = feature_matching_loss(layers, [t.clone() for t in layers])
    assert loss.item() == 0.0
    c = 0.375
    loss, metrics = feature_matching_loss(layers, [t + c for t in layers])
    assert loss.item() == pytest.approx(2 * c, rel=1e-5)
    assert metrics["feature_matching"] == pytest.approx(2 * c, rel=1e-5)


def test_feature_matching_detaches_real_and_checks_shapes():
    real = torch.randn(1, 4, 4, 4, requires_grad=True)
    fake = torch.randn(1, 4, 4, 4, requires_grad=True)
    feature_matching_loss([real], [fake])[0].backward()
    assert real.grad is None and fake.grad is not None
    with pytest.raises(InvalidInputError, match=r"\(1, 4, 4, 4\)"):
        feature_matching_loss([real], [torch.zeros(1, 4, 2, 2)])
    with pytest.raises(InvalidInputError, match="1 and 2"):
        feature_matching_loss([real], [fake, fake])


def test_masked_l1_weights():
    target = torch.zeros(1, 3, 2, 2)
    prediction = torch.zeros(1, 3, 2, 2)
    prediction[..., 0, :] = 1.0  # error 1 on the top row (the hole)
    prediction[..., 1, :] = 0.5  # error 0.5 on the bottom row (valid)
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, :] = 1.0
    plain, metrics = masked_l1(prediction, target)
    assert plain.item() == pytest.approx(0.75)
    assert set(metrics) == {"l1"}
    loss, metrics = masked_l1(prediction, target, mask)
    assert loss.item() == pytest.approx(0.75)  # unit weights: the plain mean
    assert metrics["l1_hole"] == pytest.approx(6 / 12)
    assert metrics["l1_valid"] == pytest.approx(3 / 12)
    loss, metrics = masked_l1(prediction, target, mask, hole_weight=6.0, valid_weight=2.0)
    assert loss.item() == pytest.approx(6 * 0.5 + 2 * 0.25)
    assert metrics["l1"] == pytest.approx(3.5)


def test_masked_l1_refusals():
    image = torch.zeros(1, 3, 4, 4)
    with pytest.raises(InvalidInputError, match=r"\(1, 3, 4, 4\)"):
        masked_l1(image, torch.zeros(1, 3, 4, 5))
    with pytest.raises(InvalidInputError, match=r"mask shape \(1, 3, 4, 4\)"):
        masked_l1(image, image, torch.zeros(1, 3, 4, 4))
    with pytest.raises(ParameterError, match="-1"):
        masked_l1(image, image, torch.zeros(1, 1, 4, 4), hole_weight=-1)


# --- Gram, style, perceptual -----------------------------------------------------------------


def test_gram_matrix_known_tensor():
    # C=2, H=1, W=2: rows [1, 2] and [3, 4]; F F^T = [[5, 11], [11, 25]], divided by 4.
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.allclose(gram_matrix(features), expected)
    assert gram_matrix(torch.randn(3, 5, 4, 4)).shape == (3, 5, 5)
    with pytest.raises(InvalidInputError, match=r"\(5, 4, 4\)"):
        gram_matrix(torch.randn(5, 4, 4))


def _features(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "a": torch.rand(2, 4, 8, 8, generator=generator),
        "b": torch.rand(2, 6, 4, 4, generator=generator),
    }


def _shuffle_pixels(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    shuffled = {}
    for name, f in features.items():
        b, c, h, w = f.shape
        order = torch.randperm(h * w, generator=torch.Generator().manual_seed(1))
        shuffled[name] = f.reshape(b, c, h * w)[..., order].reshape(b, c, h, w)
    return shuffled


def test_style_and_perceptual_losses():
    real, other = _features(0), _features(1)
    for loss_fn, key in ((style_loss, "style"), (perceptual_loss, "perceptual")):
        zero, metrics = loss_fn(real, {k: v.clone() for k, v in real.items()})
        assert zero.item() == 0.0
        positive, metrics = loss_fn(real, other)
        assert positive.item() > 0
        assert metrics[key] == pytest.approx(metrics[f"{key}_a"] + metrics[f"{key}_b"])
    shuffled = _shuffle_pixels(real)
    assert style_loss(real, shuffled)[0].item() == pytest.approx(0.0, abs=1e-6)
    assert perceptual_loss(real, shuffled)[0].item() > 0.1


def test_perceptual_loss_hand_value_and_layer_check():
    real = {"a": torch.zeros(1, 2, 2, 2), "b": torch.zeros(1, 1, 4, 4)}
    fake = {"a": torch.full((1, 2, 2, 2), 0.5), "b": torch.full((1, 1, 4, 4), 2.0)}
    assert perceptual_loss(real, fake)[0].item() == pytest.approx(2.5)
    with pytest.raises(InvalidInputError, match="same non-empty layers"):
        style_loss(real, {"a": fake["a"]})


# --- VGG-19 ----------------------------------------------------------------------------------


def test_vgg19_layout_matches_torchvision_indices():
    assert VGG19_CONV_INDICES == (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    assert VGG19_LAYER_INDICES["relu1_1"] == 1
    assert VGG19_LAYER_INDICES["relu2_1"] == 6
    assert VGG19_LAYER_INDICES["relu3_1"] == 11
    assert VGG19_LAYER_INDICES["relu5_4"] == 35
    net = Vgg19Features()
    assert net.layer_indices == {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11}
    assert len(net.features) == 12  # truncated right after relu3_1
    convs = [i for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)]
    assert convs == [0, 2, 5, 7, 10]
    assert isinstance(net.features[11], torch.nn.ReLU)
    assert list(net.state_dict()) == [
        f"features.{i}.{p}" for i in (0, 2, 5, 7, 10) for p in ("weight", "bias")
    ]
    deep = Vgg19Features(layers=("relu5_4",))
    assert len(deep.features) == 36
    assert [m.out_channels for m in deep.features if isinstance(m, torch.nn.Conv2d)] == [
        64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512,
    ]
    with pytest.raises(ParameterError, match="relu1_1"):
        Vgg19Features(layers=("relu9_9",))


def test_vgg19_is_frozen_and_normalises():
    net = Vgg19Features()
    net.train()
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())
    images = torch.rand(2, 3, 16, 16)
    out = net(images)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "relu1_1": (2, 64, 16, 16),
        "relu2_1": (2, 128, 8, 8),
        "relu3_1": (2, 256, 4, 4),
    }
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    first = torch.relu(net.features[0]((images - mean) / std))
    assert torch.allclose(out["relu1_1"], first, atol=1e-6)
    fake = images.clone().requires_grad_()
    net(fake)["relu3_1"].sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    with pytest.raises(InvalidInputError, match=r"\(2, 1, 16, 16\)"):
        net(torch.rand(2, 1, 16, 16))


@pytest.fixture
def source_net() -> Vgg19Features:
    torch.manual_seed(3)
    return Vgg19Features()


def _assert_same_outputs(a: Vgg19Features, b: Vgg19Features) -> None:
    images = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    out_a, out_b = a(images), b(images)
    assert out_a.keys() == out_b.keys()
    for name in out_a:
        assert torch.equal(out_a[name], out_b[name])


def test_vgg19_weights_roundtrip_safetensors_torch_and_env(source_net, tmp_path, monkeypatch):
    state = {k: v.contiguous() for k, v in source_net.state_dict().items()}
    st_path = tmp_path / "vgg19.safetensors"
    save_file(state, str(st_path))
    pth_path = tmp_path / "vgg19.pth"
    # torchvision-like file: features + an ignored classifier entry
    torch.save({**state, "classifier.0.weight": torch.zeros(4, 4)}, pth_path)
    bare_path = tmp_path / "bare.pth"  # keys without the features. prefix
    torch.save({k.removeprefix("features."): v for k, v in state.items()}, bare_path)
    for path in (st_path, pth_path, bare_path, str(pth_path)):
        weights = load_vgg19_weights(path)
        assert set(weights) == set(state)
        _assert_same_outputs(source_net, Vgg19Features(weights=weights))
    monkeypatch.setenv(VGG19_WEIGHTS_ENV, str(st_path))
    _assert_same_outputs(source_net, Vgg19Features.pretrained())
    loss = PerceptualStyleLoss()
    real, fake = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8, requires_grad=True)
    perc, style, metrics = loss(real, fake)
    assert perc.item() > 0 and style.item() > 0
    assert {"perceptual", "style", "perceptual_relu3_1", "style_relu1_1"} <= set(metrics)
    (perc + style).backward()
    assert fake.grad is not None
    zero_p, zero_s, _ = loss(real, real.clone())
    assert zero_p.item() == 0.0 and zero_s.item() == 0.0


def test_vgg19_missing_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(VGG19_WEIGHTS_ENV, raising=False)
    with pytest.raises(MissingWeightsError) as info:
        load_vgg19_weights()
    message = str(info.value)
    hints = (VGG19_WEIGHTS_ENV, "--vgg-weights", "vgg19-dcbb9e9d.pth", "texture_loss=discriminator")
    for hint in hints:
        assert hint in message
    assert isinstance(info.value, InpaintError)
    with pytest.raises(MissingWeightsError, match=r"nowhere\.pth"):
        load_vgg19_weights(tmp_path / "nowhere.pth")
    with pytest.raises(MissingWeightsError):
        PerceptualStyleLoss()


def test_vgg19_wrong_shape_and_missing_key(source_net, tmp_path):
    state = dict(source_net.state_dict())
    state["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(InvalidWeightsError) as info:
        load_vgg19_weights(path)
    message = str(info.value)
    assert "features.5.weight" in message
    assert "(128, 64, 3, 3)" in message and "(128, 32, 3, 3)" in message
    del state["features.5.weight"]
    del state["features.2.bias"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(InvalidWeightsError, match=r"features\.2\.bias.*\(64,\)"):
        load_vgg19_weights(tmp_path / "missing.pth")
    # only the convolutions the requested layers need are required
    assert set(load_vgg19_weights(tmp_path / "missing.pth", layers=("relu1_1",))) == {
        "features.0.weight",
        "features.0.bias",
    }


class _NotATensor:
    """A pickled custom object: weights_only=True loading must refuse it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_torch_weights_are_read_with_weights_only(source_net, tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({**source_net.state_dict(), "extra": _NotATensor()}, path)
    with pytest.raises(InvalidWeightsError, match="weights_only"):
        load_vgg19_weights(path)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(InvalidWeightsError, match="list"):
        load_vgg19_weights(tmp_path / "list.pth")
