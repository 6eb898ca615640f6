"""Demo: what a simulated deployment needs beyond the simulator itself.

Embedded services for a machine with nothing installed (``demo.embedded``), enrolment of
simulated patients and their devices with broker credentials (``demo.provision``), a labelled
cohort stored as the live system would have recorded it (``demo.seed``) and the simulated care
team that answers its alerts (``demo.nurse_model``). The ``homecare demo``, ``seed`` and
``simulate`` commands wire them.
"""
