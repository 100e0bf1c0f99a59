"""Names shared by the injector, the webhook and the agent, each defined once."""

from __future__ import annotations

from typing import Final

# --- Labels and annotations users set ------------------------------------------------
# Namespace label that opts a whole namespace in (or explicitly out).
NAMESPACE_LABEL: Final = "vcl-injection"
# Pod annotation: "true" opts a single pod in, "false" opts it out; the pod wins.
ANNOTATION_INJECT: Final = "vcl.io/inject"
# Pod annotation: "node" (the node's shared VPP) or "pod" (a VPP sidecar in the pod).
ANNOTATION_DATAPLANE: Final = "vcl.io/dataplane"
# Pod annotation: comma-separated names of the containers to put on VCL.
ANNOTATION_CONTAINERS: Final = "vcl.io/containers"
ANNOTATION_RX_FIFO: Final = "vcl.io/rx-fifo-size"
ANNOTATION_TX_FIFO: Final = "vcl.io/tx-fifo-size"
# "true": VCL's message queues signal an eventfd, so idle epoll apps sleep (~0% CPU).
ANNOTATION_EVENTFD: Final = "vcl.io/eventfd"
# "true" (default): every app thread registers as its own VCL app worker
# (multi-thread-workers); "false": one shared worker per process (see VclDefaults.workers).
ANNOTATION_WORKERS: Final = "vcl.io/workers"
# "false": peers reach the pod over the kernel only (the agent leaves it out of the node's
# endpoint table in mode local); read by the agent, checked here
ANNOTATION_VPP_INGRESS: Final = "vcl.io/vpp-ingress"
# Traffic kept on the kernel stack besides loopback (which always is).
ANNOTATION_KERNEL_CIDRS: Final = "vcl.io/kernel-cidrs"
ANNOTATION_KERNEL_PORTS: Final = "vcl.io/kernel-ports"
# "both": a wildcard listener also listens on the kernel, so kubelet probes connect.
ANNOTATION_KERNEL_LISTEN: Final = "vcl.io/kernel-listen"
ANNOTATION_APP_SCOPE: Final = "vcl.io/app-scope"
# Entries of each app worker's VPP message queue (VCL event-queue-size, a power of two).
# A sixteenth of it holds connect/accept notifications: VPP refuses connections beyond
# that many not yet accepted (VPP 26.06's 2048 gives 128; a burst of 200 failed).
ANNOTATION_EVENT_QUEUE: Final = "vcl.io/event-queue-size"

# --- Annotations we write ---------------------------------------------------------------
# What was injected (JSON), like Istio's sidecar.istio.io/status; its presence marks a pod
# as injected and lets a later pass undo and redo the injection exactly.
ANNOTATION_STATUS: Final = "vcl.io/status"
# Written by the agent once the pod's VPP app namespace exists.
ANNOTATION_REGISTERED: Final = "vcl.io/registered"
# kubectl's choice of container for logs/exec; kept on the app container.
ANNOTATION_DEFAULT_CONTAINER: Final = "kubectl.kubernetes.io/default-container"

# --- Scheduling -------------------------------------------------------------------------
# The agent labels its node with this while the node's VPP answers.
NODE_LABEL_VPP: Final = "vcl.io/vpp"
NODE_LABEL_VPP_READY: Final = "ready"
# Readiness gate the agent sets, so a pod leaves Service endpoints while its VPP is down.
READINESS_GATE: Final = "vcl.io/dataplane-ready"

# --- Names of what we add to a pod (prefix vcl- so they cannot clash by accident) ---------
INIT_CONTAINER: Final = "vcl-init"
VPP_CONTAINER: Final = "vcl-vpp"
VOLUME_POD_DIR: Final = "vcl-pod"
VOLUME_LIBS: Final = "vcl-lib"
VOLUME_VPP_PRIVATE: Final = "vcl-vpp-private"

# --- Paths inside the pod ---------------------------------------------------------------
VCL_DIR: Final = "/etc/vcl"  # the pod's own directory: vcl.conf, env file, app socket
VCL_CONF: Final = f"{VCL_DIR}/vcl.conf"
VCL_ENV_FILE: Final = f"{VCL_DIR}/vcl.env"  # VCL_APP_NAMESPACE_ID/_SECRET, written by the agent
LIB_MOUNT: Final = "/opt/vcl"  # emptyDir the init container fills with the runtime libraries
LIB_DIR: Final = f"{LIB_MOUNT}/lib"
VPP_PRIVATE_DIR: Final = "/run/vpp-private"  # pod dataplane: VPP's API/CLI sockets, not shared
# Pod dataplane: VPP's default app namespace socket, under its runtime dir (the pod dir).
POD_DATAPLANE_APP_SOCKET: Final = f"{VCL_DIR}/app_ns_sockets/default"

# --- Environment variables --------------------------------------------------------------
ENV_LD_PRELOAD: Final = "LD_PRELOAD"
ENV_LD_LIBRARY_PATH: Final = "LD_LIBRARY_PATH"
ENV_VCL_CONFIG: Final = "VCL_CONFIG"
ENV_VCL_ENV_FILE: Final = "VCL_ENV_FILE"
# LDP's default (5) makes every fd >= 32 a VCL handle, breaking shells and epoll.
ENV_LDP_SID_BIT: Final = "LDP_SID_BIT"
ENV_KERNEL_CIDRS: Final = "VCL_KERNEL_CIDRS"
ENV_KERNEL_PORTS: Final = "VCL_KERNEL_PORTS"
ENV_KERNEL_LISTEN: Final = "VCL_KERNEL_LISTEN"
ENV_POD_UID: Final = "VCL_POD_UID"  # downward API metadata.uid, for subPathExpr
# Lazy wiring: the interposer alone is preloaded and dlopens LDP (named here) at the first
# socket that needs VPP, so an app keeps working on the kernel when VPP is down.
ENV_DUALSTACK_LDP: Final = "VCL_DUALSTACK_LDP"
# LDP names its VPP app "<LDP_APP_NAME>-ldp-<pid>": we set "<container>-<pod uid>" (the
# kubelet expands $(VCL_POD_UID)), so VPP's apps tell which pod's container attached. The
# container's name alone was not enough: every replica's process is pid 1, and two apps of
# one name in VPP cannot tell whose listener or connection a session is. The interposer's
# reports carry the container's name (VCL_CONTAINER).
ENV_LDP_APP_NAME: Final = "LDP_APP_NAME"
ENV_CONTAINER: Final = "VCL_CONTAINER"
# Dataplane node: the agent's datagram socket in the pod's directory, where the interposer
# reports each process (preload took, LDP loaded or why not).
ENV_REPORT_SOCKET: Final = "VCL_REPORT_SOCKET"
REPORT_SOCKET: Final = f"{VCL_DIR}/report.sock"
ENV_VPP_STARTUP_CONF: Final = "VPP_STARTUP_CONF"
ENV_VCL_CONF_CONTENT: Final = "VCL_CONF_CONTENT"

# Every env var we add to a selected container; LD_PRELOAD and LD_LIBRARY_PATH are apart:
# prepended to the app's own value, never replacing it.
INJECTED_ENV: Final = (
    ENV_POD_UID,
    ENV_VCL_CONFIG,
    ENV_VCL_ENV_FILE,
    ENV_LDP_SID_BIT,
    ENV_KERNEL_CIDRS,
    ENV_KERNEL_PORTS,
    ENV_KERNEL_LISTEN,
    ENV_DUALSTACK_LDP,
    ENV_REPORT_SOCKET,
    ENV_CONTAINER,
    ENV_LDP_APP_NAME,
)

# Version of the vcl.io/status annotation format.
STATUS_VERSION: Final = 1
