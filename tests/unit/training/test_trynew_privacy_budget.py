"""An epsilon no noise can reach is a config error naming the key, not Opacus's ValueError."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from megalith.errors import ConfigError
from megalith.training.privacy import PrivacyConfig, PrivateTraining


def test_an_unreachable_epsilon_names_the_key() -> None:
    private = PrivateTraining(
        PrivacyConfig(epsilon=1e-9), rows=240, batch_size=32, accumulation=1, seed=0
    )
    model = nn.Linear(3, 2)
    with pytest.raises(ConfigError, match=r"train\.privacy\.epsilon: 1e-09 cannot be reached"):
        private.attach(model, torch.optim.SGD(model.parameters(), lr=0.1), total_steps=8)
