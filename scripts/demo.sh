#!/usr/bin/env bash
# `make demo`: the local control plane, the CRDs and examples, the operator; Ctrl-C stops it all.
# SPE_DEMO_ONCE=1 prints the state once and stops (used by the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

operator_pid=""
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "==> stopping the operator and the control plane"
  [ -n "$operator_pid" ] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null || true
  $BIN/spe-dev down || true
}
trap cleanup INT TERM EXIT

echo "==> starting the local control plane (spe-dev up)"
kubeconfig_line=$($BIN/spe-dev up | tee /dev/stderr | grep '^export KUBECONFIG=')
eval "$kubeconfig_line"
kubectl() { $BIN/spe-dev kubectl "$@"; }

echo "==> installing the CRDs, the spe-system namespace, service accounts and RBAC"
# The operator runs on this machine (not as the Deployment in manifests/base/operator.yaml), so
# its webhook is served on loopback and it registers that configuration itself.
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s crd --all >/dev/null
for f in namespace serviceaccounts operator-rbac operator-guardrails permit-roles; do
  kubectl apply --server-side -f "manifests/base/$f.yaml" >/dev/null
done

echo "==> starting the operator (log: .cache/demo-operator.log)"
mkdir -p .cache
SPE_ALLOW_UNENCRYPTED_STORAGE=${SPE_ALLOW_UNENCRYPTED_STORAGE:-false} \
  $BIN/spe-operator run >.cache/demo-operator.log 2>&1 &
operator_pid=$!
for _ in $(seq 1 60); do
  grep -q "Starting the main handler" .cache/demo-operator.log 2>/dev/null && break
  kill -0 "$operator_pid" 2>/dev/null || { cat .cache/demo-operator.log; exit 1; }
  sleep 1
done

echo "==> applying the examples: the tool, the datasets, the permit, then its workspace"
# In dependency order: the admission webhook refuses a permit naming datasets that do not exist
# and a workspace whose permit is not Active yet.
for f in tool-jupyterlab dataset-prostate-mr dataset-lung-ct datapermit; do
  kubectl apply --server-side -f "examples/$f.yaml"
done
for _ in $(seq 1 30); do
  phase=$(kubectl get -f examples/datapermit.yaml -o jsonpath='{.status.phase}' 2>/dev/null || true)
  [ "$phase" = "Active" ] && break
  sleep 1
done
kubectl apply --server-side -f examples/workspace.yaml || echo "   (the workspace was refused; see the message above)"
echo "   (examples/outputreview.yaml is created by the egress gateway's identity only; not applied here)"
sleep 3

echo "==> what exists now"
kubectl get nodes -L nvidia.com/gpu.product
kubectl get spe -A 2>/dev/null || true
kubectl get namespaces -l spe.ehds.io/permit 2>/dev/null || true
echo
echo "$kubeconfig_line"
if [ "${SPE_DEMO_ONCE:-0}" = "1" ]; then
  exit 0
fi
echo "The SPE is running. Use the KUBECONFIG line above with kubectl; Ctrl-C stops everything."
while kill -0 "$operator_pid" 2>/dev/null; do sleep 2; done
echo "the operator exited; see .cache/demo-operator.log"
