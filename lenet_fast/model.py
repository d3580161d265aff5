"""LeNet5, the class users hold: the network (``lenet_fast.nn.network.Network``) with ``fit``."""
from .nn.network import Network
from .train.trainer import Trainer


class LeNet5(Network):
    __doc__ = Network.__doc__.replace("LeNet-5, the network:", "LeNet-5:", 1) + """
    Beyond the network's methods: ``fit`` (a ``lenet_fast.train.Trainer``).
    """

    def fit(self, x, y, epochs=None, batch_size=None, optimizer=None, learning_rate=None, momentum=None,
            weight_decay=None, validation_data=None, distortions=False, seed=0, callbacks=(), verbose=0,
            checkpoint=None, recipe="default"):
        """Train on (x, y) and return the History (per epoch: loss, training error measured on the
        fly, validation loss and error, seconds, images/s).

        The defaults follow the paper for the paper variant: SDLM, one sample at a time in a constant
        random order, the paper's eta schedule (at half its eta) and mu, 20 passes (60 with distortions);
        ``recipe="paper"`` is the paper's recipe exactly (``lenet_fast.train.recipes``). The modern variant defaults to SGD with momentum on mini-batches of 64. See ``lenet_fast.train.Trainer`` for every option;
        this is a thin convenience over it."""
        trainer = Trainer(self, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                          learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay,
                          distortions=distortions, seed=seed, callbacks=callbacks, verbose=verbose,
                          checkpoint=checkpoint, recipe=recipe)
        with self.training_guard():      # one fit at a time per model: another thread's raises RuntimeError
            return trainer.fit(x, y, validation_data=validation_data)
