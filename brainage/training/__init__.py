"""Training the network: run state and resume, callbacks, metrics, devices, sweeps."""
