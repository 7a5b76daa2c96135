"""The device rule predict.py (predict.device) and the model report (device) share."""

import pytest
import torch

from seglab.runtime.devices import choose_device
from seglab.runtime.errors import UserError


def test_auto_is_a_gpu_when_there_is_one_else_the_cpu():
    assert choose_device("auto", "predict.device").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert choose_device("cpu", "device") == torch.device("cpu")


@pytest.mark.parametrize("option", ["predict.device", "device"])
def test_a_name_torch_does_not_know_names_the_option_and_the_choices(option):
    with pytest.raises(UserError, match=rf"^{option}='gpu0' is not a device; use auto, cpu, cuda or cuda:<index>$"):
        choose_device("gpu0", option)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA device")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_a_cuda_device_without_one_is_refused_with_the_fix(name):
    with pytest.raises(UserError, match=rf"^predict.device={name} but no CUDA device is available; use predict.device=cpu"):
        choose_device(name, "predict.device")
