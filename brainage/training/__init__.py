"""Training the network, one concern per module (the stages ``train``, ``sweep`` and
``distribute`` are thin entries over them).

``settings``         TrainSettings: the ``train`` config read once, typed and checked
``checkpoint``       the run directory (fresh or resumed) and RunState, the state a resume needs
``model_setup``      the network built under its dtype policy and compiled, or reloaded
``inputs``           the train/val/test splits as batch sequences; class weights
``callbacks``        the epoch callbacks: data order, clock, plateau, best epoch, checkpoint, log
``fitting``          model.fit and the test predictions, inside the distribution's scope
``metrics``          test metrics, ``metrics.json``'s contents and the summary table
``outputs``          the run's files: history, predictions, figures, metrics.json last
``distribution``     the devices a backend sees and data parallelism over them
``stream_measure``   input-pipeline throughput and memory
``reproducibility``  seeding and deterministic kernels
``sweeps``           a Hydra multirun of the training stage gathered into tables
``legacy_args``      argparse-era command lines rewritten as Hydra overrides
"""
