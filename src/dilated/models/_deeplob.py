"""DeepLOB (Zhang, Zohren & Roberts, "DeepLOB: Deep Convolutional Neural Networks for Limit Order Books", IEEE
Trans. Signal Processing 67(11), 2019, arXiv:1808.03668; reference code
zcakhaa/DeepLOB-Deep-Convolutional-Neural-Networks-for-Limit-Order-Books, ``create_deeplob`` in the Keras
notebooks ``jupyter_tensorflow/run_train_tensorflow-version{1,2}.ipynb``).

Parameter counts (defaults: 32 conv filters, 64 per inception branch, LSTM 64, 3 classes):

* reference, TensorFlow-2 notebook (Keras ``LSTM``, one bias vector): 142,435;
* reference, TensorFlow-1 notebook (``CuDNNLSTM``, two bias vectors): 142,691;
* this module: 142,691, the same as the CuDNN variant: ``torch.nn.LSTM`` also has two bias vectors
  (``4 * 64 = 256`` more parameters than Keras' ``LSTM``); every other layer matches Keras exactly.

``conv_channels=16, inception_channels=32``, the narrower widths of the DeepLOB modules re-implemented in
jwallbridge/translob ``LobFeatures.py``, gives 60,691 in Keras (60,947 here, again ``+4 * 64``).

Not causal: the reference's ``(4, 1)`` convs and the inception module use Keras ``padding='same'`` over time. A
``(4, 1)`` conv pads one step before and two after, so its output ``t`` sees events ``t-1 .. t+2``; the whole
front end (six such convs and the inception module's ``5x1``) maps event ``t`` to features that see events
``t-8 .. t+14``. This is kept, as in the reference: for classifying a whole window it changes nothing, but the
per-step features the LSTM reads look ahead, and DeepLOB cannot be streamed event by event like the causal
models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dilated.geometry import Layer, padding_amounts
from dilated.layers import channels_last
from dilated.models._blocks import init_like_keras
from dilated.models._registry import DataFit, register_model


@dataclass
class DeepLOBConfig:
    """DeepLOB hyper-parameters; defaults are the reference notebooks'.

    Attributes:
        num_features: LOB features per event (10 levels x 4); must be divisible by 4.
        window: events per input, used for the example input only (the LSTM takes any length).
        conv_channels: filters of every conv in the convolutional blocks.
        inception_channels: filters of every conv in the inception module (output ``3 * inception_channels``).
        lstm_hidden: LSTM units.
        dropout: the reference's ``Dropout(0.2, noise_shape=(None, 1, C))`` before the LSTM: whole feature
            channels dropped for every step alike. (The reference also calls it with ``training=True``, i.e.
            dropout at inference time too; here it follows ``model.train()``/``model.eval()``.)
        num_classes: output classes (down, stationary, up).
        negative_slope: of every LeakyReLU.
        batch_norm: a ``BatchNorm2d`` after every LeakyReLU, as the reference's PyTorch notebook
            (``jupyter_pytorch/run_train_pytorch.ipynb``); the Keras notebooks have none (the default). Without it
            the activations shrink about 4x per conv block at the Keras initialisation, and once the optimiser has
            grown the weights, the LSTM's gates saturate: measured on the planted book (``benchmarks/lob_planted.py``),
            the loss stays at ln 3 and the LSTM's last output is exactly 0 after 400 steps.
    """

    num_features: int = 40
    window: int = 100
    conv_channels: int = 32
    inception_channels: int = 64
    lstm_hidden: int = 64
    dropout: float = 0.2
    num_classes: int = 3
    negative_slope: float = 0.01
    batch_norm: bool = False

    def __post_init__(self) -> None:
        if self.num_features < 4 or self.num_features % 4:
            raise ValueError(f"num_features must be a positive multiple of 4 (levels x 4), got {self.num_features}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class TimeConv2d(nn.Conv2d):
    """``Conv2d`` over ``(batch, channels, time, features)`` with Keras padding on the time axis (``"same"`` or
    ``"valid"``; features are never padded), declaring its time-axis ``geometry`` like :mod:`dilated.layers`.

    ``"same"`` pads ``(kernel - 1) // 2`` steps before and the rest after, as Keras (the extra step of an even
    kernel goes on the right).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        padding: str = "valid",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel, stride)
        self.geometry = Layer(kernel[0], stride[0], 1, padding, "conv", "TimeConv2d", "keras")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = padding_amounts(self.geometry, x.shape[2])
        return super().forward(F.pad(x, (0, 0, left, right)) if left or right else x)


def _activation(channels: int, negative_slope: float, batch_norm: bool) -> list[nn.Module]:
    """The LeakyReLU after each conv, then a ``BatchNorm2d`` where ``batch_norm`` (the PyTorch reference's order)."""
    return [nn.LeakyReLU(negative_slope), *([nn.BatchNorm2d(channels)] if batch_norm else [])]


def _conv_block(
    in_channels: int,
    channels: int,
    first_kernel: tuple[int, int],
    first_stride: tuple[int, int],
    negative_slope: float,
    batch_norm: bool = False,
) -> nn.Sequential:
    """One of DeepLOB's three convolutional blocks: a conv across features, then two ``(4, 1)`` convs over time."""
    return nn.Sequential(
        TimeConv2d(in_channels, channels, first_kernel, first_stride),
        *_activation(channels, negative_slope, batch_norm),
        TimeConv2d(channels, channels, (4, 1), padding="same"),
        *_activation(channels, negative_slope, batch_norm),
        TimeConv2d(channels, channels, (4, 1), padding="same"),
        *_activation(channels, negative_slope, batch_norm),
    )


class InceptionModule(nn.Module):
    """DeepLOB's inception module: ``1x1 -> 3x1``, ``1x1 -> 5x1`` and ``maxpool 3x1 -> 1x1`` branches (all
    'same' over time, LeakyReLU after every conv), concatenated on channels. The receptive field is the widest
    branch's, as the dataflow analysis finds (``dilated.receptive_field``).

    Shapes: ``(B, in_channels, T, 1) -> (B, 3 * channels, T, 1)``.
    """

    def __init__(self, in_channels: int, channels: int, negative_slope: float = 0.01, batch_norm: bool = False) -> None:
        super().__init__()

        def conv(cin: int, k: int) -> list[nn.Module]:
            return [
                TimeConv2d(cin, channels, (k, 1), padding="same"),
                *_activation(channels, negative_slope, batch_norm),
            ]

        pool = nn.MaxPool2d((3, 1), stride=1, padding=(1, 0))  # Keras 'same', stride 1: one -inf step each side
        self.branches = nn.ModuleList(
            [
                nn.Sequential(*conv(in_channels, 1), *conv(channels, 3)),
                nn.Sequential(*conv(in_channels, 1), *conv(channels, 5)),
                nn.Sequential(pool, *conv(in_channels, 1)),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


@register_model(
    "deeplob",
    DeepLOBConfig,
    lambda model: (model.config.num_features, model.config.window),
    DataFit(
        channels="num_features", length="window", classes="num_classes", representations=("raw", "stationary_levels")
    ),
)
class DeepLOB(nn.Module):
    """DeepLOB: three convolutional blocks over ``(time, features)`` that merge the 40 LOB features into one
    column, an inception module, an LSTM over time and a dense classifier (Zhang et al. 2019, Sec. IV, Fig. 3).

    Layout: the paper and the Keras reference take ``(batch, 100, 40, 1)`` (events, features, channel). The input
    here is channels-first like every model in ``dilated``: ``(batch, 40, 100)`` = ``paper_window.transpose(1, 2)``
    for a ``(batch, 100, 40)`` window. Internally it becomes the image layout ``(batch, 1, time, 40)`` for torch's
    ``Conv2d`` (channels-first NCHW; time is the height axis), and ``(batch, time, channels)`` for the LSTM.

    The conv front end sees 23 events per step (the inception module's widest branch; ``dilated.receptive_field``
    reports it for the ``dropout`` row); the LSTM then reads every step, so the output depends on the whole window.
    See the module docstring on why the front end is not causal.

    Args:
        x: ``(batch, num_features, time)`` = ``(batch, 40, 100)``.

    Returns:
        ``(batch, num_classes)`` logits (the reference's softmax is left to the loss).
    """

    def __init__(self, config: DeepLOBConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or DeepLOBConfig()
        ch, slope, bn = c.conv_channels, c.negative_slope, c.batch_norm
        self.features = nn.Sequential(
            _conv_block(1, ch, (1, 2), (1, 2), slope, bn),  # (price, size) pairs: 40 -> 20 columns
            _conv_block(ch, ch, (1, 2), (1, 2), slope, bn),  # ask/bid at each level: 20 -> 10
            _conv_block(ch, ch, (1, c.num_features // 4), (1, 1), slope, bn),  # all levels: 10 -> 1
        )
        self.inception = InceptionModule(ch, c.inception_channels, slope, bn)
        self.dropout = nn.Dropout1d(c.dropout)
        self.lstm = nn.LSTM(3 * c.inception_channels, c.lstm_hidden, batch_first=True)
        self.classifier = nn.Linear(c.lstm_hidden, c.num_classes)
        init_like_keras(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.config.num_features:
            raise ValueError(
                f"DeepLOB expects (batch, {self.config.num_features}, time); got {tuple(x.shape)} "
                "(a paper-layout window (batch, time, features) needs .transpose(1, 2))"
            )
        image = channels_last(x).unsqueeze(1)  # (B, F, T) -> (B, T, F) -> (B, 1, T, F)
        # Same shape and indexing, NHWC memory (torch.channels_last): oneDNN's convs run faster on it (a CPU train
        # step 5-25% faster, benchmarks/profile_training.py), and the LSTM input below comes out time-major in
        # memory, so it needs no copy.
        image = image.contiguous(memory_format=torch.channels_last)
        h = self.inception(self.features(image))  # (B, 3 * inception, T, 1)
        h = self.dropout(h.squeeze(-1))  # (B, C, T); whole channels dropped
        out, _ = self.lstm(channels_last(h))  # (B, T, hidden)
        return self.classifier(out[:, -1])  # (B, num_classes)
