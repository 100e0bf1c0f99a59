"""Jinja2 rendering of templates/: vcl.conf, VPP's startup.conf and the pod fragments."""

from __future__ import annotations

import functools
import marshal
from dataclasses import asdict, dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from injector.core import constants as c
from injector.core.annotations import PodSettings
from injector.core.config import InjectorConfig

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def templates_dir() -> Path:
    """templates/ as installed in the wheel (injector/templates), else the source tree's."""
    installed = Path(str(resources.files("injector"))) / "templates"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "templates"


@functools.cache
def _environment() -> jinja2.Environment:
    # Loaded once, on first use: nothing is read at import time.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_text(name: str, **params: Any) -> str:
    return _environment().get_template(name).render(**params)


def render_yaml(name: str, **params: Any) -> Any:
    return yaml.load(render_text(name, **params), Loader=_YamlLoader)


@dataclass(frozen=True)
class VclConfParams:
    """What a pod's vcl.conf says; the agent builds one from vcl.io/status settings."""

    app_socket: str
    rx_fifo_size: int
    tx_fifo_size: int
    eventfd: bool
    workers: bool
    app_scope: str
    event_queue_size: int = 0  # 0: VCL's default (pods injected before the setting existed)

    @classmethod
    def of(cls, settings: PodSettings, app_socket: str) -> VclConfParams:
        """The vcl.conf of a pod with these settings, its app socket where it sees it."""
        return cls(
            app_socket=app_socket,
            rx_fifo_size=settings.rx_fifo_size,
            tx_fifo_size=settings.tx_fifo_size,
            eventfd=settings.eventfd,
            workers=settings.workers,
            app_scope=settings.app_scope,
            event_queue_size=settings.event_queue_size,
        )


def render_vcl_conf(params: VclConfParams) -> str:
    return render_text("vcl.conf.j2", **asdict(params))


def render_startup_conf(**params: Any) -> str:
    """VPP startup.conf; see templates/startup.conf.j2 for the parameters."""
    return render_text("startup.conf.j2", **params)


@dataclass(frozen=True)
class PodFragments:
    """Everything inject() adds, rendered once per (config, settings) and cloned per pod."""

    container_env: list[dict[str, Any]]
    container_mounts: list[dict[str, Any]]
    init_container: dict[str, Any]
    vpp_sidecar: dict[str, Any] | None
    volumes: list[dict[str, Any]]
    ld_preload: str
    ld_library_path: str

    @cached_property
    def env_names(self) -> frozenset[str]:
        return frozenset(e["name"] for e in self.container_env)

    @cached_property
    def mount_paths(self) -> frozenset[str]:
        return frozenset(m["mountPath"] for m in self.container_mounts)

    @cached_property
    def _per_container(self) -> bytes:
        return marshal.dumps((self.container_env, self.container_mounts), 2)

    @cached_property
    def _per_pod(self) -> bytes:
        return marshal.dumps((self.init_container, self.vpp_sidecar, self.volumes), 2)

    def container_copy(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Fresh (env, mounts) for one container: marshal kept from the first use, so
        each pod pays only the loads (the fragments are never written to)."""
        env, mounts = marshal.loads(self._per_container)
        return env, mounts

    def pod_copy(self) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        """Fresh (init container, VPP sidecar, volumes) for one pod."""
        init, sidecar, volumes = marshal.loads(self._per_pod)
        return init, sidecar, volumes


def render_fragments(config: InjectorConfig, settings: PodSettings) -> PodFragments:
    node = settings.dataplane == "node"
    app_socket = f"{c.VCL_DIR}/app.sock" if node else c.POD_DATAPLANE_APP_SOCKET
    common: dict[str, Any] = {
        "dataplane": settings.dataplane,
        "vcl_dir": c.VCL_DIR,
        "vcl_conf": c.VCL_CONF,
        "lib_mount": c.LIB_MOUNT,
        "lib_dir": c.LIB_DIR,
        "private_dir": c.VPP_PRIVATE_DIR,
        "app_socket": app_socket,
        "runtime": config.runtime,
        "pod_dataplane": config.pod_dataplane,
        "timeout": config.registration_timeout_seconds,
        "host_root": config.host_root,
    }
    container = render_yaml(
        "pod/container.yaml.j2",
        **common,
        env_file=c.VCL_ENV_FILE if node else "",
        report_socket=c.REPORT_SOCKET,
        ldp_sid_bit=config.runtime.ldp_sid_bit,
        kernel_cidrs=settings.kernel_cidrs,
        kernel_ports=settings.kernel_ports,
        kernel_listen=settings.kernel_listen,
        ldp_lazy=config.runtime.ldp_loading == "lazy",
    )
    vcl_conf = ""
    sidecar = None
    if not node:
        vcl_conf = render_vcl_conf(VclConfParams.of(settings, app_socket))
        startup = render_startup_conf(
            runtime_dir=c.VCL_DIR,
            private_dir=c.VPP_PRIVATE_DIR,
            poll_sleep_usec=config.pod_dataplane.poll_sleep_usec,
            main_heap_size=config.pod_dataplane.main_heap_size,
        )
        sidecar = render_yaml("pod/vpp-sidecar.yaml.j2", **common, startup_conf=startup)
    init = render_yaml(
        "pod/init-container.yaml.j2",
        **common,
        vcl_conf_content=vcl_conf,
        resources=config.init_resources.model_dump(),
    )
    libs = f"{c.LIB_DIR}/{config.runtime.interposer}"
    if config.runtime.ldp_loading == "preload":
        libs += f":{c.LIB_DIR}/{config.runtime.ldp}"
    return PodFragments(
        container_env=container["env"],
        container_mounts=container["volumeMounts"],
        init_container=init,
        vpp_sidecar=sidecar,
        volumes=render_yaml("pod/volumes.yaml.j2", **common),
        ld_preload=libs,
        ld_library_path=c.LIB_DIR,
    )
