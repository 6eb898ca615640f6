"""homecare: the wiring — settings, logging, the ``homecare`` command and the demo."""
