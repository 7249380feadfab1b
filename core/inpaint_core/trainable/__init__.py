"""What a learned method's training module is built from, without the trainer.

:mod:`~inpaint_core.trainable.model` holds the contract between a method and the trainer
(:class:`~inpaint_core.trainable.model.TrainableModel`, its optimiser settings and phases);
:mod:`~inpaint_core.trainable.holes` the helpers on batches with holes that methods' losses
use. A method file imports these at module level, so they live outside
:mod:`inpaint_core.training`: running a learned method never imports the trainer.
"""
