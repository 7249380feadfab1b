"""CPU inference path of learned methods: inference mode, channels-last weights and inputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inpaint_core import get_method, inpaint  # noqa: E402
from inpaint_core.learned import prepare_for_inference  # noqa: E402
from inpaint_core.masks import make_mask  # noqa: E402


def test_cpu_networks_are_channels_last_and_unchanged_in_value() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    before = {k: v.clone() for k, v in conv.state_dict().items()}
    prepare_for_inference(conv, "cpu")
    assert conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    for key, value in conv.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_instance_norm_networks_stay_nchw() -> None:
    networks = get_method("edge-gan")(device="cpu").load_networks("cpu")
    convs = [m for m in networks.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous() for c in convs)


def test_predict_runs_in_inference_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    method_class = get_method("edge-gan")
    seen: list[bool] = []
    real = method_class.predict

    def recording(self, networks, image, mask):  # type: ignore[no-untyped-def]
        seen.append(torch.is_inference_mode_enabled())
        return real(self, networks, image, mask)

    monkeypatch.setattr(method_class, "predict", recording)
    image = np.full((32, 32, 3), 128, np.uint8)
    inpaint(image, make_mask("centre", (32, 32), 0.2, seed=0), method="edge-gan")
    assert seen == [True]


def test_channels_last_equals_nchw_within_float_rounding() -> None:
    method = get_method("edge-gan")(device="cpu")
    networks = method.load_networks("cpu")
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32))
    hole = torch.from_numpy(make_mask("free_form", (64, 64), 0.2, seed=1)[None, None] * 1.0)
    hole = hole.float()
    with torch.inference_mode():
        fast, _ = method.predict(
            networks,
            image.contiguous(memory_format=torch.channels_last),
            hole.contiguous(memory_format=torch.channels_last),
        )
        networks.to(memory_format=torch.contiguous_format)
        try:
            plain, _ = method.predict(networks, image, hole)
        finally:
            prepare_for_inference(networks, "cpu")
    assert float((fast - plain).abs().max()) * 255 < 0.5
