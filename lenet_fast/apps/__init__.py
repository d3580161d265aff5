"""The applications built on the library: the ``lenet-fast`` command line and its benchmark."""
