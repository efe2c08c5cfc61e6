"""A fake kubelet serving the real pod-resources v1 gRPC API on a unix socket.

It answers ``List``, ``Get`` and ``GetAllocatableResources`` of
``v1.PodResourcesLister`` (the messages generated from the exporter's
``podresources_v1.proto``, written from Kubernetes' API definition) with the
pods tests and benchmarks give it, so the exporter's client talks gRPC over
a real socket exactly as it does to a kubelet. It can go down and come back
(a kubelet restart removes and re-creates the socket) and answer slowly
(past the client's deadline).

Needs the ``kubernetes`` extra (grpcio, protobuf).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from wattfleet.exporter.workloads import podresources_v1_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["PodResourcesLister"].full_name


@dataclass
class FakeContainer:
    name: str
    devices: dict[str, list[str]] = field(default_factory=dict)  # resource name -> device ids


@dataclass
class FakePod:
    namespace: str
    name: str
    containers: list[FakeContainer] = field(default_factory=list)
    uid: str = ""


def gpu_pod(namespace: str, name: str, device_ids: list[str], resource: str = "nvidia.com/gpu",
            container: str = "main", uid: str = "") -> FakePod:
    """A pod with one container holding ``device_ids`` of ``resource``."""
    return FakePod(namespace, name, [FakeContainer(container, {resource: list(device_ids)})], uid)


def _pod_message(pod: FakePod) -> pb.PodResources:
    return pb.PodResources(name=pod.name, namespace=pod.namespace, containers=[
        pb.ContainerResources(name=c.name, devices=[
            pb.ContainerDevices(resource_name=r, device_ids=ids) for r, ids in c.devices.items()])
        for c in pod.containers])


class FakeKubelet:
    """Serves pod-resources v1 on ``socket_path`` (a kubelet.sock in a temporary directory)."""

    def __init__(self, socket_path: str | os.PathLike[str], pods: list[FakePod] | None = None) -> None:
        self.socket_path = Path(socket_path)
        self.pods: list[FakePod] = list(pods or [])
        self.delay = 0.0  # seconds every answer waits (a slow kubelet)
        self.calls = 0
        self._lock = threading.Lock()
        self._server: Any = None

    # --- what the kubelet knows ------------------------------------------------------
    def set_pods(self, pods: list[FakePod]) -> None:
        with self._lock:
            self.pods = list(pods)

    def add_pod(self, pod: FakePod) -> None:
        with self._lock:
            self.pods.append(pod)

    def remove_pod(self, namespace: str, name: str) -> None:
        with self._lock:
            self.pods = [p for p in self.pods if (p.namespace, p.name) != (namespace, name)]

    # --- the gRPC service ---------------------------------------------------------------
    def _answer(self) -> list[FakePod]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            return list(self.pods)

    def _list(self, request: pb.ListPodResourcesRequest, context: Any) -> pb.ListPodResourcesResponse:
        return pb.ListPodResourcesResponse(pod_resources=[_pod_message(p) for p in self._answer()])

    def _get(self, request: pb.GetPodResourcesRequest, context: Any) -> pb.GetPodResourcesResponse:
        for p in self._answer():
            if (p.namespace, p.name) == (request.pod_namespace, request.pod_name):
                return pb.GetPodResourcesResponse(pod_resources=_pod_message(p))
        context.abort(grpc.StatusCode.NOT_FOUND, f"pod {request.pod_namespace}/{request.pod_name} not found")
        raise AssertionError("unreachable")  # context.abort raises

    def _allocatable(self, request: pb.AllocatableResourcesRequest,
                     context: Any) -> pb.AllocatableResourcesResponse:
        devices: dict[str, list[str]] = {}
        for p in self._answer():
            for c in p.containers:
                for r, ids in c.devices.items():
                    devices.setdefault(r, []).extend(ids)
        return pb.AllocatableResourcesResponse(devices=[
            pb.ContainerDevices(resource_name=r, device_ids=ids) for r, ids in devices.items()])

    def start(self) -> FakeKubelet:
        """Listen (again): a kubelet (re)start creates the socket afresh."""
        if self._server is not None:
            return self
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        handlers = {
            "List": grpc.unary_unary_rpc_method_handler(
                self._list, request_deserializer=pb.ListPodResourcesRequest.FromString,
                response_serializer=pb.ListPodResourcesResponse.SerializeToString),
            "Get": grpc.unary_unary_rpc_method_handler(
                self._get, request_deserializer=pb.GetPodResourcesRequest.FromString,
                response_serializer=pb.GetPodResourcesResponse.SerializeToString),
            "GetAllocatableResources": grpc.unary_unary_rpc_method_handler(
                self._allocatable, request_deserializer=pb.AllocatableResourcesRequest.FromString,
                response_serializer=pb.AllocatableResourcesResponse.SerializeToString),
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-kubelet"))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_insecure_port(f"unix://{self.socket_path}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Go down: the socket stops answering and is removed, as when the kubelet stops."""
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None
        self.socket_path.unlink(missing_ok=True)

    def __enter__(self) -> FakeKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
