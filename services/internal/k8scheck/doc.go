// Package k8scheck has no code of its own: its test holds the Kubernetes
// manifests of k8s/ (a kustomize tree, see docs/kubernetes.md) to the
// services' source, so that a renamed variable, a moved port or a consumer
// that no longer exists breaks `go test` rather than a rollout:
//
//   - every environment variable a workload sets, and every key of the
//     generated ConfigMaps, is one the service's code reads;
//   - every service accepts the configuration it is given (its own loader,
//     as at start, with the example Secret's values), in the base and in
//     each overlay;
//   - secrets (URLs with credentials, passwords, tokens) only ever come from
//     a secretKeyRef, and no kustomization carries a Secret with data;
//   - every service has its readiness probe on /readyz and its liveness
//     probe on /healthz of its admin port (RINGBACK_ADMIN_ADDR), listening
//     on all interfaces;
//   - terminationGracePeriodSeconds covers the preStop pause, the drain
//     (RINGBACK_SHUTDOWN_TIMEOUT) and the servers' stop;
//   - the pods run as non-root on a read-only root filesystem, with
//     requests and limits, RINGBACK_INSTANCE from the pod name where the
//     service reads it, and a PodDisruptionBudget;
//   - the dialer's KEDA triggers name the CALLS stream and durable
//     consumers the source declares.
//
// It reads files only (no cluster, no kustomize binary); building the
// overlays is `go run sigs.k8s.io/kustomize/kustomize/v5@v5.4.3 build
// k8s/overlays/<name>`.
package k8scheck
