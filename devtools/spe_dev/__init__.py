"""spe-dev: runs the project's local Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler built from the published Go modules, and kwok for
fake nodes) in the background, on loopback only."""
