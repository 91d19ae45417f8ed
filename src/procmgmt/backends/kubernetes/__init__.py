"""``-P kubernetes``: the generation as Kubernetes objects in one ``kubernetes.yaml``.

By default one Deployment per process and a Service for each process whose
readiness check names a port; with ``PROCMGMT_KUBERNETES_MODE=pod`` one Pod
holding every process as a container. Written from the same translation
pipeline as every backend (overrides patch each process's part); procmgmt
does not talk to a cluster (``deploys`` is False): ``kubectl apply -f
OUT/kubernetes.yaml``. See docs/backends.md (kubernetes).
"""

from procmgmt.backends.kubernetes.backend import KubernetesBackend

BACKEND = KubernetesBackend
