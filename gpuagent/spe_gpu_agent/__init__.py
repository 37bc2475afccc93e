"""spe-gpu-agent: the node agent that reads the GPUs through NVML (nvidia-ml-py) and publishes
node labels, each Workspace's GPU usage summary and OpenTelemetry metrics."""
