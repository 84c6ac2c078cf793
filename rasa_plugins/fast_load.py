"""Loading Rasa's TensorFlow models (DIET, the response selector, TED) without a training step.

Rasa 3.6 builds each model's weights before loading them by *training it for one step* on one example
(`RasaModel.load`: `compile`, then `fit` on a batch of one). That traces the whole training function —
forward pass, gradients and the Adam update — in TensorFlow's graph compiler, only to throw the result away
when `load_weights` overwrites it. Measured here (docs/reliability.md, "Rasa's start"), that tracing was
most of a Rasa start: 46–70 s of a restart on the shared 2 cores; unpacking the model takes about 1.5 s.

`load_without_a_training_step` builds the same weights with one eager forward pass of the model's loss on the
same example (no tracing, no gradients, no optimizer update), then loads the trained weights and traces the
prediction function once, as Rasa does. The variables the optimizer's state would fill are not created; the
checkpoint's values for them are expected to be left over (`expect_partial`). Loading for fine-tuning
(`finetune_mode`) needs that state, so it keeps Rasa's own way.
`tests/integration/reliability/test_fast_load.py` checks that both ways load the very same weights and give
the very same predictions.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel

from rasa_plugins import patching

__all__ = ["PATCHES", "load_without_a_training_step", "rasa_load"]

logger = logging.getLogger(__name__)

# Rasa's own, kept for fine-tuning and for the tests' comparison.
rasa_load = RasaModel.load.__func__  # type: ignore[attr-defined]


def load_without_a_training_step(
    cls: type[RasaModel],
    model_file_name: str,
    model_data_example: RasaModelData,
    predict_data_example: RasaModelData | None = None,
    finetune_mode: bool = False,
    *args: Any,
    **kwargs: Any,
) -> RasaModel:
    """`RasaModel.load`, with its weights built by an eager forward pass instead of a training step."""
    if finetune_mode:
        return rasa_load(  # type: ignore[no-any-return]
            cls, model_file_name, model_data_example, predict_data_example, finetune_mode, *args, **kwargs
        )
    import tensorflow as tf  # type: ignore[import-untyped]

    model = cls(*args, **kwargs)
    config = kwargs.get("config", {})
    # Compiled as Rasa compiles it (a model that is never trained needs no more): `fit` would need it.
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.get("learning_rate", 0.001)),
        run_eagerly=config.get("run_eagerly"),
    )
    batch, _ = RasaBatchDataGenerator(model_data_example, batch_size=1)[0]
    # In training mode, as in Rasa's `train_step`: every layer the training step builds is built here too.
    model._training = True
    try:
        model.batch_loss(batch)
    finally:
        model._training = None
    model.load_weights(model_file_name).expect_partial()
    # As Rasa does: the first prediction traces the prediction function; better now than on a user's turn.
    if predict_data_example:
        model.run_inference(predict_data_example)
    return model


PATCHES = (
    patching.Patch(
        RasaModel,
        "load",
        load_without_a_training_step,
        "84fd81c0fdd01a8048de2d9b5b3022bdbf1e155f7b4d67737eb51ecb0787d292",
        classmethod=True,
    ),
)
