"""Every registered learned method trains, saves and reloads its weights, and keeps the method
contract: :func:`~inpaint_core.testing_learned.check_learned_method` on its
``smoke_test_options``. What cannot be trained here (``lama``, ``mi-gan``, architectures that
only run published weights) gets the inference part on untrained weights
(:func:`~inpaint_core.testing_learned.check_untrained_method`).

The cases come from the registry, so a new learned method is covered without editing this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

import inpaint_core
from inpaint_core.learned import LearnedMethod
from inpaint_core.testing_learned import check_learned_method, check_untrained_method

#: Training steps are few: a larger learning rate than the papers' makes the loss fall in them.
FAST_LR = 1e-3


def learned_methods() -> list[type[LearnedMethod]]:
    """The registered learned methods' classes, by name."""
    names = sorted(info.name for info in inpaint_core.list_methods() if info.learned)
    methods = [inpaint_core.get_method(name) for name in names]
    return [method for method in methods if issubclass(method, LearnedMethod)]


def cases() -> list[object]:
    """``(method, options, trainable)`` for each method's smoke config and for each of its
    published-only architectures' small configs."""
    found: list[object] = []
    for method in learned_methods():
        trainable = method.smoke_test_loss is not None
        found.append(
            pytest.param(method, method.smoke_test_options, trainable, id=method.info.name)
        )
        for options in method.smoke_test_inference_options:
            label = f"{method.info.name}-{options.get('architecture', 'inference')}"
            found.append(pytest.param(method, options, False, id=label))
    return found


def test_every_learned_method_is_covered() -> None:
    names = {info.name for info in inpaint_core.list_methods() if info.learned}
    assert {method.info.name for method in learned_methods()} == names
    assert names >= {
        "edge-gan",
        "pix2pix",
        "glcic",
        "context-encoder",
        "partial-conv-unet",
        "deepfill-v2",
        "lama",
        "mi-gan",
    }


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(("method", "options", "trainable"), cases())
def test_learned_method_keeps_the_learned_contract(
    method: type[LearnedMethod], options: Mapping[str, object], trainable: bool, tmp_path: Path
) -> None:
    assert options, f"{method.info.name} sets no smoke_test_options"
    if trainable:
        assert method.smoke_test_loss is not None
        check_learned_method(
            method, {**options, "lr": FAST_LR}, tmp_path, loss_key=method.smoke_test_loss
        )
    else:
        check_untrained_method(method, dict(options), tmp_path)


def test_a_shared_enum_keeps_each_methods_own_members() -> None:
    from inpaint_core.errors import ParameterError
    from inpaint_core.nn.losses.texture import TextureLoss
    from inpaint_methods.edge_gan import EdgeGanConfig
    from inpaint_methods.partial_conv_unet import PartialConvUnetConfig

    assert EdgeGanConfig(texture_loss="vgg").texture_loss is TextureLoss.VGG  # type: ignore[arg-type]
    with pytest.raises(
        ParameterError, match=r"unknown texture_loss 'none'; valid: vgg, discriminator-features$"
    ):
        EdgeGanConfig(texture_loss=TextureLoss.NONE)
    with pytest.raises(
        ParameterError, match=r"unknown texture_loss 'discriminator-features'; valid: vgg, none$"
    ):
        PartialConvUnetConfig(texture_loss="discriminator-features")  # type: ignore[arg-type]
