"""Format ``lama``: the published big-lama folder (advimman/lama) -> the ``lama`` method.

The folder holds ``config.yaml`` (the training config Hydra saved; its ``generator`` section is
the architecture, with OmegaConf ``${a.b.c}`` interpolations) and ``models/best.ckpt``, a
PyTorch Lightning checkpoint: a dict whose ``state_dict`` holds the generator under
``generator.model.N...`` beside the discriminator's and the loss networks' tensors (skipped),
and whose ``hyper_parameters`` is a pickled OmegaConf object. The checkpoint is read with
:func:`inpaint_core.weights.pickles.load_pickled`, which runs no code from it; the config with
PyYAML, resolving the interpolations the config uses with :func:`resolve_interpolations`.

Generator options the published configs do not use and the ``lama`` method does not build
(spatial transforms, squeeze-excitation, spectral positional encoding, ``out_ffc``, gated
FFCs, other paddings or FFT norms ...) are refused with an error naming the option.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, ParameterError
from inpaint_core.weights.formats import ConvertedWeights, WeightsFormat, fitted_weights

__all__ = ["FORMAT", "convert", "lama_config", "resolve_interpolations"]

CONFIG_NAME = "config.yaml"
CHECKPOINT = Path("models") / "best.ckpt"
_INTERPOLATION = re.compile(r"\$\{([^${}]+)\}")
_MAX_DEPTH = 32
#: Top-level generator keys mapped to LamaConfig fields.
_GENERATOR_FIELDS = {
    "input_nc": "input_nc",
    "output_nc": "output_nc",
    "ngf": "ngf",
    "n_downsampling": "n_downsampling",
    "n_blocks": "n_blocks",
    "max_features": "max_features",
}
#: Generator keys accepted only at the value the reference defaults to (the value that
#: leaves the option off); anything else is refused.
_GENERATOR_DEFAULTS: dict[str, Any] = {
    "padding_type": "reflect",
    "spatial_transform_layers": None,
    "out_ffc": False,
}
#: Keys that only matter when an option above is on: accepted with any value.
_GENERATOR_IGNORED = ("spatial_transform_kwargs", "out_ffc_kwargs")
#: Conv kwargs accepted only at their reference defaults.
_CONV_DEFAULTS: dict[str, Any] = {
    "fft_norm": "ortho",
    "padding_type": "reflect",
    "gated": False,
    "groups": 1,
    "bias": False,
    "use_se": False,
    "spectral_pos_encoding": False,
    "ffc3d": False,
    "spatial_scale_factor": None,
}
_CONV_GROUPS = {
    "init_conv_kwargs": "init",
    "downsample_conv_kwargs": "downsample",
    "resnet_conv_kwargs": "resnet",
}


def _lookup(root: Mapping[str, Any], dotted: str, where: str) -> Any:
    node: Any = root
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise InvalidWeightsError(f"{where}: interpolation ${{{dotted}}} names no value")
        node = node[part]
    return node


def resolve_interpolations(value: Any, root: Mapping[str, Any], where: str = "config",
                           _depth: int = 0) -> Any:
    """``value`` with OmegaConf ``${a.b.c}`` references into ``root`` replaced, recursively.

    A string that is exactly one reference takes the referenced value (any type); references
    inside longer strings are replaced by their text. Resolver calls such as ``${env:HOME}``
    are refused: resolve only the sections you need.

    Raises:
        InvalidWeightsError: a reference to a missing key, a resolver, or a cycle.
    """
    if _depth > _MAX_DEPTH:
        raise InvalidWeightsError(f"{where}: interpolations nest too deep (a cycle?)")
    if isinstance(value, Mapping):
        return {
            k: resolve_interpolations(v, root, f"{where}.{k}", _depth) for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve_interpolations(v, root, where, _depth) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    for dotted in _INTERPOLATION.findall(value):
        if ":" in dotted:
            raise InvalidWeightsError(f"{where}: resolver interpolation ${{{dotted}}} is not "
                                      "supported")
    whole = _INTERPOLATION.fullmatch(value.strip())
    if whole:
        found = _lookup(root, whole.group(1).strip(), where)
        return resolve_interpolations(found, root, where, _depth + 1)

    def text(match: re.Match[str]) -> str:
        found = _lookup(root, match.group(1).strip(), where)
        return str(resolve_interpolations(found, root, where, _depth + 1))

    return _INTERPOLATION.sub(text, value)


def _refuse(where: str, option: str, value: Any, why: str) -> InvalidWeightsError:
    return InvalidWeightsError(
        f"{where}: option {option}={value!r} is not supported by method 'lama' ({why}); "
        "only the big-lama / lama-fourier generator layout is built"
    )


def lama_config(config: Mapping[str, Any], where: str = CONFIG_NAME) -> Any:
    """The :class:`~inpaint_core.nn.layers.ffc.LamaConfig` of a parsed LaMa ``config.yaml``.

    Args:
        config: the YAML as loaded by ``yaml.safe_load`` (interpolations unresolved).
        where: names the file in errors.

    Raises:
        InvalidWeightsError: no ``generator`` section, another generator kind or trainer, a
            trainer that does not concatenate the mask or adds noise, an option the method does
            not build (named), or values the architecture refuses.
    """
    from inpaint_core.nn.layers.ffc import LamaConfig

    if not isinstance(config, Mapping) or not isinstance(config.get("generator"), Mapping):
        raise InvalidWeightsError(f"{where} has no 'generator' section; is it LaMa's config?")
    trainer = resolve_interpolations(config.get("training_model") or {}, config,
                                     f"{where}: training_model")
    if trainer.get("kind", "default") != "default":
        raise _refuse(where, "training_model.kind", trainer.get("kind"), "only the default "
                      "trainer's forward is reproduced")
    if not trainer.get("concat_mask", True):
        raise _refuse(where, "training_model.concat_mask", False, "the mask is always an input")
    if trainer.get("add_noise_kwargs") is not None:
        raise _refuse(where, "training_model.add_noise_kwargs", trainer["add_noise_kwargs"],
                      "no noise input")
    generator = resolve_interpolations(config["generator"], config, f"{where}: generator")
    if generator.get("kind") != "ffc_resnet":
        raise _refuse(where, "generator.kind", generator.get("kind"), "only ffc_resnet")
    values: dict[str, Any] = {}
    for key, value in generator.items():
        option = f"generator.{key}"
        if key == "kind" or key in _GENERATOR_IGNORED:
            continue
        if key in _GENERATOR_FIELDS:
            values[_GENERATOR_FIELDS[key]] = value
        elif key == "add_out_act":
            values["add_out_act"] = {True: "tanh", False: "none"}.get(value, value)
        elif key in _GENERATOR_DEFAULTS:
            if value != _GENERATOR_DEFAULTS[key] and not (key == "spatial_transform_layers"
                                                          and value == []):
                raise _refuse(where, option, value, "not built")
        elif key in _CONV_GROUPS:
            if not isinstance(value, Mapping):
                raise InvalidWeightsError(f"{where}: {option} must be a mapping, got {value!r}")
            group = _CONV_GROUPS[key]
            for name, setting in value.items():
                if name in ("ratio_gin", "ratio_gout", "enable_lfu"):
                    values[f"{group}_{name}"] = setting
                elif name in _CONV_DEFAULTS:
                    if setting != _CONV_DEFAULTS[name]:
                        raise _refuse(where, f"{option}.{name}", setting, "not built")
                else:
                    raise _refuse(where, f"{option}.{name}", setting, "unknown option")
        else:
            raise _refuse(where, option, value, "unknown option")
    try:
        return LamaConfig(**values)
    except (ParameterError, TypeError) as error:
        raise InvalidWeightsError(f"{where}: {error}") from None


def _state_dict(checkpoint: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(checkpoint, Mapping):
        raise InvalidWeightsError(
            f"{where} holds a {type(checkpoint).__name__}, not a Lightning checkpoint dict"
        )
    state = checkpoint.get("state_dict")
    if not isinstance(state, Mapping):
        raise InvalidWeightsError(
            f"{where} has no 'state_dict' (keys: {', '.join(map(str, checkpoint)) or 'none'}); "
            "is it a PyTorch Lightning checkpoint of LaMa?"
        )
    return state


def convert(path: Path) -> ConvertedWeights:
    """Read a big-lama folder; see the module docstring.

    Args:
        path: the folder holding ``config.yaml`` and ``models/best.ckpt``.

    Returns:
        The ``lama`` method's config and ``{"generator": state}``; ``source`` names the format,
        the files, and the checkpoint's ``epoch`` / ``global_step`` where present.

    Raises:
        MissingWeightsError: the folder or one of its two files does not exist.
        InvalidWeightsError: an unreadable file, a refused option, or generator tensors that do
            not fit (the first missing / unexpected / mis-shaped keys are named).
    """
    from inpaint_core.nn.layers.ffc import FfcResNetGenerator
    from inpaint_core.weights.pickles import load_pickled

    folder = Path(path)
    config_file, checkpoint_file = folder / CONFIG_NAME, folder / CHECKPOINT
    for needed in (config_file, checkpoint_file):
        if not needed.is_file():
            raise MissingWeightsError(
                f"{needed} does not exist; format 'lama' expects {FORMAT.expects} (unzip "
                "big-lama.zip and pass the big-lama folder)"
            )
    try:
        parsed = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InvalidWeightsError(f"{config_file} is not readable YAML: {error}") from None
    config = lama_config(parsed, str(config_file))
    checkpoint = load_pickled(checkpoint_file)
    state = _state_dict(checkpoint, str(checkpoint_file))
    prefix = "generator."
    generator_state = {k[len(prefix):]: v for k, v in state.items()
                       if isinstance(k, str) and k.startswith(prefix)}
    if not generator_state:
        sample = ", ".join(list(map(str, state))[:5]) or "none"
        raise InvalidWeightsError(
            f"{checkpoint_file}: state_dict has no 'generator.*' tensors (first keys: {sample})"
        )
    what = f"lama generator ({checkpoint_file})"
    fits = {"generator": (FfcResNetGenerator(config), generator_state, what)}
    source: dict[str, Any] = {"format": "lama",
                              "files": [str(config_file), str(checkpoint_file)]}
    for key in ("epoch", "global_step"):
        value = checkpoint.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            source[key] = value
    return fitted_weights("lama", config, fits, source)


FORMAT = WeightsFormat(
    name="lama",
    method="lama",
    expects="the big-lama folder holding config.yaml and models/best.ckpt",
    convert=convert,
    reference="advimman/lama",
)
