"""WaveNet generation: sample mu-law codes autoregressively with the streaming engine."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from dilated.models import WaveNetConfig
from dilated.streaming._interface import Backend, stream


def generate(
    wavenet: nn.Module,
    n_samples: int,
    batch_size: int = 1,
    temperature: float = 1.0,
    global_condition: torch.Tensor | None = None,
    first_code: int | None = None,
    generator: torch.Generator | None = None,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Sample mu-law codes autoregressively from a categorical WaveNet with the streaming engine.

    Each step feeds the one-hot of the previous code (:func:`dilated.models._mulaw.one_hot`), samples the next code from
    ``softmax(logits / temperature)`` (by the Gumbel-max trick; ``temperature=0``: argmax) and feeds it back.

    Args:
        wavenet: :class:`dilated.models.WaveNet` with ``output="categorical"`` (logits over its input codes).
        n_samples: codes to generate per stream.
        batch_size: independent sequences.
        temperature: softmax temperature (> 0), or 0 for greedy decoding.
        global_condition: ``(batch, global_channels)`` for a globally conditioned WaveNet.
        first_code: the code fed at step 0 (default: the code of silence, ``quantization_channels // 2``).
        generator: for reproducible sampling.
        backend: see :func:`stream`.

    Returns:
        int64 codes ``(batch, n_samples)``; :func:`dilated.models._mulaw.mu_law_decode` turns them into audio.
    """
    config = cast(WaveNetConfig, wavenet.config)
    if config.output != "categorical":
        raise ValueError(f"generate() samples a categorical WaveNet; this one has output={config.output!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    q = config.quantization_channels
    if config.input_channels != q:
        raise ValueError(
            f"generate() feeds one-hot codes back: input_channels ({config.input_channels}) must equal "
            f"quantization_channels ({q})"
        )
    if config.local_channels:
        raise ValueError("generate() does not take local conditioning; step a EagerStream with local_upsampled=True")
    s = stream(wavenet, batch_size, backend=backend)
    kwargs = {} if global_condition is None else {"global_condition": global_condition}
    code = torch.full((batch_size,), q // 2 if first_code is None else first_code, dtype=torch.int64)
    eye = torch.eye(q)
    codes = torch.empty(n_samples, batch_size, dtype=torch.int64)
    with torch.inference_mode():
        noise = torch.empty(batch_size, q)
        for t in range(n_samples):
            logits = s.step(eye[code], **kwargs)  # (B, q)
            if temperature == 0:
                code = logits.argmax(-1)
            else:  # Gumbel-max: argmax(logits / T + Gumbel noise) is a sample of softmax(logits / T)
                noise.exponential_(generator=generator)
                code = (logits / temperature - noise.log_()).argmax(-1)
            codes[t] = code
    return codes.T.contiguous()
