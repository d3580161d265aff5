"""The network: its architecture (``architecture``, ``constants``), the two kernel paths (``layer_kernels``:
one layer per call; ``network_kernels``: the whole network per call), the NumPy reference (``reference``)
and the ``Network`` that owns the parameters (``network``)."""
