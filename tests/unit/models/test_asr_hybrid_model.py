"""The hybrid CTC/attention recognizer: its joint loss, the shared model check, and the config
keys ctc_weight / decoder_layers / decode_ctc_weight refused with clear errors."""

import pytest
import torch
import torch.nn.functional as F
from model_check import check_model

from megalith.config import validate_config
from megalith.data.features.logmel import LogMelSettings
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.errors import ConfigError
from megalith.models import ASRConfig, build_model
from megalith.models.asr import ATTENTION, MEMORY, ctc_loss
from megalith.models.ctc_decoding import decoding_settings, joint_ctc_weight
from megalith.models.hybrid_asr import attention_inputs, hybrid_loss

SETTINGS = LogMelSettings(8000, 128, 80, 16, 0.0, 4000.0, "slaney", 1e-6)
CLIP = InputSpec(
    "audio", "audio", shape=(1600,), mean=(-5.0,) * 16, std=(3.0,) * 16, log_mel=SETTINGS
)
TEXT = OutputSpec("text", "text", num_classes=8, shape=(6,))
HYBRID = ASRConfig(
    dim=32, layers=1, heads=2, channels=8, dropout=0.0, ctc_weight=0.3, decoder_layers=1
)


def framed(*rows: list[int], width: int = 6) -> torch.Tensor:
    return torch.tensor([[BOS, *r, EOS] + [PAD] * (width - len(r) - 2) for r in rows])


def hybrid_batch() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 8, (8, 3), generator=gen)
    table = TensorTable(
        inputs={"audio": torch.randn(8, 1600, generator=gen) * 0.1},
        targets={"text": framed(*ids.tolist())},
        rows=torch.arange(8).numpy(),
    )
    table = attention_inputs(table, "text")
    return table.inputs, table.targets


def test_teacher_forcing_feeds_the_transcript_without_its_last_position():
    inputs, targets = hybrid_batch()
    assert torch.equal(inputs["text"], targets["text"][:, :-1])
    assert inputs["text"][0, 0] == BOS


def test_joint_loss_weighs_ctc_and_the_decoders_cross_entropy():
    torch.manual_seed(0)
    model = build_model(HYBRID, [CLIP], [TEXT])
    inputs, targets = hybrid_batch()
    outputs = model(inputs)
    assert outputs["text"].shape == (8, 6, 8) and outputs["text" + MEMORY].shape == (8, 6, 32)
    attention = outputs["text" + ATTENTION]
    assert attention.shape == (8, 5, 8)
    ctc = ctc_loss(outputs["text"], targets["text"])
    by_hand = F.cross_entropy(
        attention.flatten(0, 1), targets["text"][:, 1:].flatten(), ignore_index=PAD
    )
    joint = hybrid_loss(outputs, targets["text"], "text", 0.3)
    assert joint.item() == pytest.approx(0.3 * ctc.item() + 0.7 * by_hand.item(), rel=1e-5)
    # without the transcript (predicting), no decoder logits: the CTC loss alone
    alone = model({"audio": inputs["audio"]})
    assert "text" + ATTENTION not in alone
    assert hybrid_loss(alone, targets["text"], "text", 0.3).item() == pytest.approx(ctc.item())


@pytest.mark.slow  # 30 training steps of an encoder and a decoder
def test_hybrid_passes_the_shared_model_check():
    inputs, targets = hybrid_batch()

    def loss(outputs, predicted, targets):
        return hybrid_loss(predicted, targets["text"], "text", 0.3)

    model = check_model(
        lambda: build_model(HYBRID, [CLIP], [TEXT]), inputs, targets, [TEXT], loss_fn=loss
    )
    assert any(name.startswith("decoder.") for name, _ in model.named_parameters())


def _config(**model: object) -> dict:
    return {
        "data": {"source": "t.csv"},
        "inputs": [{"name": "a", "type": "audio"}],
        "outputs": [{"name": "t", "type": "text", "tokenizer": "char"}],
        "model": {"arch": "asr", **model},
    }


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"ctc_weight": 0.0}, "model.ctc_weight"),
        ({"ctc_weight": 1.5}, "model.ctc_weight"),
        ({"ctc_weight": 0.3}, "decoder_layers: ctc_weight 0.3 trains an attention decoder"),
        ({"decoder_layers": 2}, "decoder_layers: a decoder is trained only when ctc_weight"),
        ({"decode_ctc_weight": 0.5}, "decode_ctc_weight: attention decoding needs the decoder"),
        (
            {
                "ctc_weight": 0.3,
                "decoder_layers": 1,
                "decode_ctc_weight": 0.3,
                "lm": "x",
                "beam_size": 4,
            },
            "lm: shallow fusion happens inside the CTC prefix beam search",
        ),
    ],
)
def test_the_config_refuses_a_hybrid_it_cannot_build(model, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_config(**model), origin="asr.yaml")


def test_decoding_settings_default_to_the_trained_weight_and_take_overrides():
    hybrid = validate_config(_config(ctc_weight=0.3, decoder_layers=1)).model
    assert joint_ctc_weight(decoding_settings(hybrid), 0.3) == 0.3
    assert joint_ctc_weight(decoding_settings(hybrid, decode_ctc_weight=1.0), 0.3) == 1.0
    # a language model fuses into the CTC beam search: CTC alone unless asked otherwise
    assert joint_ctc_weight(decoding_settings(hybrid, lm="runs/lm"), 0.3) == 1.0
    ctc = validate_config(_config()).model
    assert joint_ctc_weight(decoding_settings(ctc), 1.0) == 1.0
    with pytest.raises(ConfigError, match=r"model\.decode_ctc_weight: attention decoding needs"):
        decoding_settings(ctc, decode_ctc_weight=0.5)
